"""The catalogue: Chinese and English full text, filters, facets, sort, pages, drafts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from exhibitors import catalogue
from exhibitors import service as exhibitor_service
from exhibitors.catalogue import CatalogueQuery, query_terms, search, terms_of
from exhibitors.models import CatalogueCount, Exhibitor, Project
from fair.accounts.models import Role, User
from fair.extensions import db
from fair.models import Fair

MakeProject = Callable[..., Project]
MakeExhibitor = Callable[..., tuple[Exhibitor, User]]


def titles(fair: Fair, viewer: User | None = None, **query: object) -> list[str]:
    page = search(fair, viewer=viewer, query=CatalogueQuery(**query))  # type: ignore[arg-type]
    return [project.title for project in page.items]


@pytest.fixture
def stage(fair: Fair, make_project: MakeProject, make_exhibitor: MakeExhibitor) -> Fair:
    """Five published projects from three provinces, with Chinese and English text."""
    _, sichuan = make_exhibitor(fair, province="CN-SC")
    _, chongqing = make_exhibitor(fair, province="CN-CQ")
    _, beijing = make_exhibitor(fair, province="CN-BJ")
    make_project(fair, user=sichuan, title="川剧变脸专场演出", category="performance",
                 price_fen=12_000_000, summary="Sichuan Opera face changing, 90 minutes.")
    make_project(fair, user=sichuan, title="蜀绣非遗体验课", category="intangible-heritage",
                 price_fen=880_000, summary="国家级非遗传承人授课。")
    make_project(fair, user=chongqing, title="巴渝民俗文化展", category="exhibition",
                 price_fen=3_500_000, summary="Folk customs of Chongqing.",
                 tags=("非遗", "民俗"))
    make_project(fair, user=beijing, title="京剧名段数字音乐会", category="digital",
                 price_fen=60_000_000, summary="Peking opera in a DIGITAL concert hall.")
    make_project(fair, user=beijing, title="长城研学旅游线路", category="tourism",
                 price_fen=450_000, summary="",
                 description="Great Wall study tour, **three days**.")
    return fair


def test_terms_are_characters_bigrams_and_lower_case_words() -> None:
    assert terms_of("川剧变脸 Opera 2020") == {"川", "剧", "变", "脸", "川剧", "剧变", "变脸",
                                              "opera", "2020"}
    assert terms_of("川 x") == {"川", "x"}


def test_query_cuts_words_to_bigrams_and_latin_words_to_prefixes() -> None:
    terms = query_terms("川剧变 剧 Opera")
    assert terms.exact == {"川剧", "剧变", "剧"}
    assert terms.prefixes == {"opera"}
    assert not query_terms(" ,.!")


@pytest.mark.parametrize(("word", "expected"), [
    ("川剧", ["川剧变脸专场演出"]),
    ("蜀绣", ["蜀绣非遗体验课"]),
    ("非遗", ["巴渝民俗文化展", "蜀绣非遗体验课"]),  # the tag counts too
    ("变脸专场", ["川剧变脸专场演出"]),
    ("长城旅游", []),  # every bigram must be present: 城旅 is not
])
def test_chinese_words_match_by_bigrams(stage: Fair, word: str, expected: list[str]) -> None:
    assert sorted(titles(stage, q=word)) == sorted(expected)


@pytest.mark.parametrize(("character", "expected"), [
    ("剧", ["京剧名段数字音乐会", "川剧变脸专场演出"]),
    ("展", ["巴渝民俗文化展"]),
    ("渝", ["巴渝民俗文化展"]),
    ("猫", []),
])
def test_a_single_chinese_character_matches(stage: Fair, character: str,
                                            expected: list[str]) -> None:
    assert sorted(titles(stage, q=character)) == sorted(expected)


@pytest.mark.parametrize(("query", "expected"), [
    ("opera", ["京剧名段数字音乐会", "川剧变脸专场演出"]),
    ("OPERA", ["京剧名段数字音乐会", "川剧变脸专场演出"]),
    ("Digital", ["京剧名段数字音乐会"]),
    ("oper", ["京剧名段数字音乐会", "川剧变脸专场演出"]),  # prefixes match
    ("peking opera", ["京剧名段数字音乐会"]),  # every word
    ("great wall", ["长城研学旅游线路"]),  # from the Markdown description
    ("川剧 opera", ["川剧变脸专场演出"]),  # Chinese and English together
    ("opera%", ["京剧名段数字音乐会", "川剧变脸专场演出"]),  # punctuation is no wildcard
    ("ballet", []),
])
def test_english_words_match_ignoring_case(stage: Fair, query: str,
                                           expected: list[str]) -> None:
    assert sorted(titles(stage, q=query)) == sorted(expected)


def test_an_edited_project_is_found_by_its_new_words_only(
    fair: Fair, make_project: MakeProject, make_exhibitor: MakeExhibitor
) -> None:
    _, user = make_exhibitor(fair)
    project = make_project(fair, user=user, title="川剧变脸专场演出", summary="")
    exhibitor_service.update_project(project, user=user, changes={"title": "蜀绣体验课"})
    assert titles(fair, q="蜀绣") == ["蜀绣体验课"]
    assert titles(fair, q="川剧") == []


def test_filters_by_category_province_and_price(stage: Fair) -> None:
    assert titles(stage, category="tourism") == ["长城研学旅游线路"]
    assert sorted(titles(stage, province="CN-BJ")) == ["京剧名段数字音乐会", "长城研学旅游线路"]
    assert sorted(titles(stage, min_price_fen=880_000, max_price_fen=12_000_000)) == [
        "川剧变脸专场演出", "巴渝民俗文化展", "蜀绣非遗体验课"]
    assert titles(stage, province="CN-SC", max_price_fen=1_000_000) == ["蜀绣非遗体验课"]
    assert titles(stage, q="opera", province="CN-SC") == ["川剧变脸专场演出"]


def test_each_facet_counts_the_matches_of_the_other_filters(stage: Fair) -> None:
    page = search(stage, viewer=None, query=CatalogueQuery(province="CN-SC"))
    assert page.total == 2
    # The category facet keeps the province filter ...
    assert page.facets["category"] == {
        "performance": 1, "exhibition": 0, "training": 0, "tourism": 0, "creative-goods": 0,
        "intangible-heritage": 1, "digital": 0, "other": 0,
    }
    # ... the province facet ignores its own filter, so other provinces stay selectable.
    assert page.facets["province"] == {"CN-BJ": 2, "CN-SC": 2, "CN-CQ": 1}
    assert page.facets["price"] == [
        {"min": "0.00", "max": "10000.00", "count": 1},
        {"min": "10000.00", "max": "50000.00", "count": 0},
        {"min": "50000.00", "max": "100000.00", "count": 0},
        {"min": "100000.00", "max": "500000.00", "count": 1},
        {"min": "500000.00", "max": None, "count": 0},
    ]

    filtered = search(stage, viewer=None, query=CatalogueQuery(q="opera", max_price_fen=500_000_00))
    assert filtered.total == 1
    assert filtered.facets["province"] == {"CN-SC": 1}
    assert filtered.facets["category"]["digital"] == 0
    # The price facet ignores the price filter: the 600,000.00 concert is still counted.
    assert [bucket["count"] for bucket in filtered.facets["price"]] == [0, 0, 0, 1, 1]


def test_a_filtered_province_is_in_its_facet_even_with_no_match(stage: Fair) -> None:
    page = search(stage, viewer=None, query=CatalogueQuery(province="CN-XZ"))
    assert page.total == 0
    assert page.items == []
    assert page.facets["province"]["CN-XZ"] == 0


@pytest.mark.parametrize(("sort", "expected"), [
    ("price_asc", ["长城研学旅游线路", "蜀绣非遗体验课", "巴渝民俗文化展", "川剧变脸专场演出",
                   "京剧名段数字音乐会"]),
    ("price_desc", ["京剧名段数字音乐会", "川剧变脸专场演出", "巴渝民俗文化展", "蜀绣非遗体验课",
                    "长城研学旅游线路"]),
    ("newest", ["长城研学旅游线路", "京剧名段数字音乐会", "巴渝民俗文化展", "蜀绣非遗体验课",
                "川剧变脸专场演出"]),
])
def test_sorts(stage: Fair, sort: str, expected: list[str]) -> None:
    assert titles(stage, sort=sort) == expected


def test_relevance_puts_title_matches_first(stage: Fair) -> None:
    # 非遗 is in the title of the embroidery class but only a tag of the folk exhibition,
    # which is newer.
    assert titles(stage, q="非遗") == ["蜀绣非遗体验课", "巴渝民俗文化展"]
    assert titles(stage, q="非遗", sort="newest") == ["巴渝民俗文化展", "蜀绣非遗体验课"]


def test_pages_cover_every_match_once(fair: Fair, make_project: MakeProject,
                                      make_exhibitor: MakeExhibitor) -> None:
    _, user = make_exhibitor(fair)
    for number in range(7):
        make_project(fair, user=user, title=f"非遗项目{number}", price_fen=100_000 + number)
    pages = [search(fair, viewer=None, query=CatalogueQuery(sort="price_asc", page=page,
                                                            per_page=3))
             for page in (1, 2, 3, 4)]
    assert [page.total for page in pages] == [7, 7, 7, 7]
    assert [[project.title for project in page.items] for page in pages] == [
        ["非遗项目0", "非遗项目1", "非遗项目2"], ["非遗项目3", "非遗项目4", "非遗项目5"],
        ["非遗项目6"], [],
    ]


def test_drafts_are_hidden_from_everyone_but_their_own_exhibitor(
    fair: Fair, make_project: MakeProject, make_exhibitor: MakeExhibitor,
    make_user: Callable[..., User], organiser: User,
) -> None:
    _, owner = make_exhibitor(fair)
    _, rival = make_exhibitor(fair)
    make_project(fair, user=owner, title="川剧公开演出")
    make_project(fair, user=owner, title="川剧草稿", publish=False)
    make_project(fair, user=rival, title="川剧对手草稿", publish=False)
    withdrawn = make_project(fair, user=owner, title="川剧已撤回")
    exhibitor_service.withdraw_project(withdrawn, user=owner)

    for viewer in (None, make_user(Role.buyer), organiser):
        assert titles(fair, viewer, q="川剧") == ["川剧公开演出"]
    assert sorted(titles(fair, owner, q="川剧")) == ["川剧公开演出", "川剧草稿"]
    assert sorted(titles(fair, rival, q="川剧")) == ["川剧公开演出", "川剧对手草稿"]
    assert search(fair, viewer=owner, query=CatalogueQuery()).facets["category"][
        "performance"] == 2


def test_other_fairs_projects_are_not_in_the_catalogue(
    fair: Fair, make_fair: Callable[..., Fair], make_project: MakeProject
) -> None:
    make_project(make_fair(name="另一场采购大会"), title="川剧专场")
    assert search(fair, viewer=None, query=CatalogueQuery(q="川剧")).total == 0


def test_api_returns_items_total_facets_with_names_and_yuan(
    client: FlaskClient, stage: Fair
) -> None:
    response = client.get(f"/api/v1/fairs/{stage.id}/projects",
                          query_string={"q": "非遗", "min_price": "0", "max_price": "100000",
                                        "per_page": "1", "lang": "en"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["total"] == 2
    assert (body["page"], body["per_page"]) == (1, 1)
    assert [item["title"] for item in body["items"]] == ["蜀绣非遗体验课"]
    item = body["items"][0]
    assert item["price"] == "8800.00"
    assert "description_html" not in item
    assert {"code": "CN-SC", "name": {"zh": "四川省", "en": "Sichuan"}, "count": 1} in (
        body["facets"]["province"])
    assert body["facets"]["category"][0] == {
        "code": "performance", "name": {"zh": "演出", "en": "Performance"}, "count": 0}
    assert body["facets"]["price"][0] == {"min": "0.00", "max": "10000.00", "count": 1}


def test_api_shows_drafts_to_their_exhibitor_signed_in_with_a_token(
    client: FlaskClient, fair: Fair, make_project: MakeProject,
    make_exhibitor: MakeExhibitor, token_for: Callable[[User], dict[str, str]],
) -> None:
    _, owner = make_exhibitor(fair)
    make_project(fair, user=owner, title="蜀绣草稿", publish=False)
    url = f"/api/v1/fairs/{fair.id}/projects"
    assert client.get(url).json["total"] == 0
    mine = client.get(url, headers=token_for(owner)).json
    assert [(item["title"], item["status"]) for item in mine["items"]] == [("蜀绣草稿", "draft")]


@pytest.mark.parametrize(("parameters", "field"), [
    ({"category": "circus"}, "category"),
    ({"province": "CN-XX"}, "province"),
    ({"min_price": "abc"}, "min_price"),
    ({"max_price": "1.234"}, "max_price"),
    ({"min_price": "-5"}, "min_price"),
    ({"min_price": "500", "max_price": "100"}, "max_price"),
    ({"sort": "random"}, "sort"),
    ({"page": "0"}, "page"),
    ({"page": "two"}, "page"),
    ({"per_page": "101"}, "per_page"),
    ({"q": "川" * 101}, "q"),
])
def test_api_refuses_bad_parameters(client: FlaskClient, fair: Fair,
                                    parameters: dict[str, str], field: str) -> None:
    response = client.get(f"/api/v1/fairs/{fair.id}/projects", query_string=parameters)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid"
    assert set(response.json["error"]["fields"]) == {field}


def test_api_answers_404_for_an_unknown_fair(client: FlaskClient) -> None:
    response = client.get("/api/v1/fairs/999/projects")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_openapi_documents_the_catalogue(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/fairs/{fair_id}/projects"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"q", "category", "province", "min_price", "max_price", "sort", "page",
            "per_page"} <= names



def test_a_word_only_in_a_draft_finds_it_for_its_exhibitor(
    fair: Fair, make_project: MakeProject, make_exhibitor: MakeExhibitor
) -> None:
    _, owner = make_exhibitor(fair)
    make_project(fair, user=owner, title="羌绣草稿 Qiang", summary="", publish=False)
    make_project(fair, user=owner, title="川剧专场", summary="")
    for query in ("羌绣", "羌", "qiang", "羌绣 qia"):
        assert titles(fair, owner, q=query) == ["羌绣草稿 Qiang"]
        assert titles(fair, None, q=query) == []


def test_a_prefix_of_one_word_or_of_none(stage: Fair) -> None:
    assert titles(stage, q="digi") == ["京剧名段数字音乐会"]  # only "digital" starts so
    assert titles(stage, q="zzz") == []
    assert search(stage, viewer=None, query=CatalogueQuery(q="zzz")).facets["price"][0][
        "count"] == 0


@pytest.mark.parametrize(("low", "high", "expected"), [
    (1_000_000, 4_999_999, 1),  # exactly the 10,000-50,000 range
    (1_000_000, 5_000_000, 1),
    (1_000_000, 15_000_000, 2),  # cuts through the 100,000-500,000 range
    (None, 880_000, 2),
    (880_001, None, 3),
    (0, None, 5),
])
def test_price_filters_whether_or_not_they_follow_the_ranges(
    stage: Fair, low: int | None, high: int | None, expected: int
) -> None:
    page = search(stage, viewer=None, query=CatalogueQuery(min_price_fen=low,
                                                           max_price_fen=high))
    assert page.total == expected == len(page.items)
    assert sum(page.facets["category"].values()) == expected
    assert sum(page.facets["province"].values()) == expected


QUERIES = [
    CatalogueQuery(),
    CatalogueQuery(sort="price_desc", per_page=2, page=2),
    CatalogueQuery(q="非遗", sort="newest"),
    CatalogueQuery(q="opera", sort="price_asc"),
    CatalogueQuery(q="非遗"),
    CatalogueQuery(q="opera"),
    CatalogueQuery(q="opera", province="CN-SC"),
    CatalogueQuery(q="剧", category="performance"),
    CatalogueQuery(q="蜀绣", min_price_fen=500_000, max_price_fen=900_000),
    CatalogueQuery(category="tourism", min_price_fen=1, max_price_fen=60_000_000),
    CatalogueQuery(province="CN-BJ", min_price_fen=1_000_000),
    CatalogueQuery(min_price_fen=880_000, max_price_fen=12_000_000),
    CatalogueQuery(q="非遗", min_price_fen=880_000, max_price_fen=3_500_000),
    CatalogueQuery(q="川剧 opera", sort="price_desc"),
    CatalogueQuery(q="蜀绣非遗", category="intangible-heritage"),
]


@pytest.mark.parametrize("query", QUERIES)
def test_counts_read_from_the_table_equal_counting_one_by_one(
    stage: Fair, monkeypatch: pytest.MonkeyPatch, query: CatalogueQuery
) -> None:
    quick = search(stage, viewer=None, query=query)
    monkeypatch.setattr(catalogue._Plan, "single", property(lambda plan: None))
    in_memory = search(stage, viewer=None, query=query)
    monkeypatch.setattr(catalogue, "MAX_MATCHES_IN_MEMORY", 0)
    in_database = search(stage, viewer=None, query=query)
    for counted in (in_memory, in_database):
        assert (quick.total, quick.facets) == (counted.total, counted.facets)
        assert quick.items == counted.items


def test_counts_follow_every_change_of_a_project(
    fair: Fair, make_project: MakeProject, make_exhibitor: MakeExhibitor
) -> None:
    _, user = make_exhibitor(fair)
    make_project(fair, user=user, title="蜀绣体验课", price_fen=880_000, summary="")
    edited = make_project(fair, user=user, title="川剧专场", summary="")
    withdrawn = make_project(fair, user=user, title="川剧巡演", summary="")
    make_project(fair, user=user, title="川剧草稿", summary="", publish=False)
    exhibitor_service.update_project(edited, user=user, changes={
        "title": "非遗展演", "category": "intangible-heritage", "price_fen": 90_000_000})
    exhibitor_service.withdraw_project(withdrawn, user=user)

    counted = _counts()
    catalogue.rebuild_counts(fair)
    db.session.commit()
    assert counted == _counts()
    assert counted[(fair.id, "", "intangible-heritage", "CN-SC", 4)] == 1
    assert counted[(fair.id, "川剧", "performance", "CN-SC", 3)] == 0
    assert search(fair, viewer=None, query=CatalogueQuery(q="川剧")).total == 0


def _counts() -> Counter[tuple[int, str, str, str, int]]:
    rows = db.session.execute(select(CatalogueCount.fair_id, CatalogueCount.term,
                                     CatalogueCount.category, CatalogueCount.province,
                                     CatalogueCount.price_bucket, CatalogueCount.projects))
    return Counter({tuple(row[:5]): row[5] for row in rows if row[5]})


def test_english_title_and_summary_are_searched(fair: Fair, make_project: MakeProject) -> None:
    project = make_project(fair, title="大熊猫文创礼盒", summary="熊猫主题伴手礼。")
    assert titles(fair, q="panda") == []
    exhibitor_service.update_project(
        project, user=_owner(project),
        changes={"title_en": "Giant panda gift box", "summary_en": "Souvenirs for heritage fans."})
    assert titles(fair, q="panda") == ["大熊猫文创礼盒"]
    assert titles(fair, q="heritage") == ["大熊猫文创礼盒"]


@pytest.mark.parametrize(("pinyin", "expected"), [
    ("chuanju", ["川剧变脸专场演出"]),
    ("shuxiu", ["蜀绣非遗体验课"]),
    ("ShuXiu", ["蜀绣非遗体验课"]),
    ("bianlian", ["川剧变脸专场演出"]),
])
def test_pinyin_finds_chinese_titles(stage: Fair, pinyin: str, expected: list[str]) -> None:
    assert titles(stage, q=pinyin) == expected


def test_pinyin_is_of_character_pairs() -> None:
    assert catalogue.pinyin_terms_of("川剧变脸") == {"chuanju", "jubian", "bianlian"}
    assert catalogue.pinyin_terms_of("Opera 川") == set()


def _owner(project: Project) -> User:
    return db.session.scalars(
        select(User).where(User.organisation_id == project.exhibitor.organisation_id)).one()
