"""The demo fair at the reference event's scale: plain functions that `flask fair demo` calls."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import math
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from pypinyin import lazy_pinyin
from sqlalchemy import insert, select

from exhibitors import catalogue
from exhibitors import media as media_files
from exhibitors import service as exhibitor_service
from exhibitors.media import StoredFile
from exhibitors.models import (
    Exhibitor,
    ExhibitorStatus,
    Media,
    MediaKind,
    Project,
    ProjectStatus,
)
from fair.accounts import service as account_service
from fair.accounts.models import Organisation, Role, User
from fair.database import use_case, utcnow
from fair.extensions import db
from fair.models import Fair, FairStatus
from fair.money import parse_yuan
from fair.reference import REFERENCE_EVENT_NAME, province_name
from livehalls import service as hall_service
from livehalls.models import Hall, Showcase
from needs import service as need_service
from needs.models import Need, NeedMatch, NeedResponse, NeedStatus, ResponseStatus

logger = logging.getLogger(__name__)

#: The demo replays the reference event, under its own name.
DEMO_FAIR_NAME = REFERENCE_EVENT_NAME
#: The reference event's published figures (see DESIGN.md).
EXHIBITORS = 317
PROJECTS = 890
HALL_NAMES = ("主会场", "非遗展演厅", "文旅推介厅")

ORGANISER_EMAIL = "organiser@fair.example"
ORGANISER_PASSWORD = "organiser-demo"  # noqa: S105 - published demo logins
EXHIBITOR_EMAIL = "exhibitor@fair.example"
EXHIBITOR_PASSWORD = "exhibitor-demo"  # noqa: S105 - published demo logins
BUYER_EMAIL = "buyer@fair.example"
BUYER_PASSWORD = "buyer-demo"  # noqa: S105 - published demo logins

#: Cities of each exhibiting province, weighted towards the host (Chengdu, Sichuan) as the
#: reference event was; each province appears at least once whatever the scale.
CITIES: dict[str, tuple[str, ...]] = {
    "CN-SC": ("成都市", "自贡市", "绵阳市", "德阳市", "乐山市", "宜宾市", "南充市", "广元市",
              "雅安市", "眉山市", "泸州市", "阿坝州", "甘孜州", "凉山州"),
    "CN-CQ": ("重庆市渝中区", "重庆市南岸区", "重庆市万州区", "重庆市大足区", "重庆市武隆区"),
    "CN-BJ": ("北京市东城区", "北京市西城区", "北京市朝阳区", "北京市海淀区"),
    "CN-SH": ("上海市黄浦区", "上海市徐汇区", "上海市静安区", "上海市浦东新区"),
    "CN-GD": ("广州市", "深圳市", "佛山市", "潮州市", "东莞市"),
    "CN-HN": ("长沙市", "湘西州", "张家界市", "岳阳市"),
    "CN-XZ": ("拉萨市", "日喀则市", "林芝市", "山南市"),
    "CN-YN": ("昆明市", "大理州", "丽江市"),
    "CN-GZ": ("贵阳市", "黔东南州", "遵义市"),
    "CN-SN": ("西安市", "延安市"),
    "CN-ZJ": ("杭州市", "绍兴市", "宁波市"),
    "CN-JS": ("南京市", "苏州市", "扬州市"),
    "CN-HB": ("武汉市", "恩施州"),
    "CN-GS": ("敦煌市", "兰州市"),
}
PROVINCE_WEIGHTS: dict[str, int] = {
    "CN-SC": 40, "CN-CQ": 12, "CN-BJ": 7, "CN-SH": 6, "CN-GD": 6, "CN-HN": 5, "CN-XZ": 4,
    "CN-YN": 4, "CN-GZ": 4, "CN-SN": 3, "CN-ZJ": 3, "CN-JS": 3, "CN-HB": 2, "CN-GS": 1,
}
INSTITUTIONS = (
    "文化馆", "群众艺术馆", "图书馆", "博物馆", "美术馆", "非物质文化遗产保护中心",
    "文化旅游发展集团", "演艺有限公司", "歌舞剧院", "川剧院", "文化创意有限公司",
    "数字科技有限公司", "国际旅行社", "文化传播有限公司", "艺术培训中心", "非遗工坊",
)


@dataclass(frozen=True)
class Theme:
    """Words for one category's titles: subjects, formats, tags and a price range in yuan."""

    subjects: tuple[str, ...]
    formats: tuple[str, ...]
    tags: tuple[str, ...]
    price_yuan: tuple[int, int]


THEMES: dict[str, Theme] = {
    "performance": Theme(
        ("川剧变脸", "藏戏", "川剧折子戏", "蜀地民族歌舞", "熊猫主题音乐剧", "清音曲艺", "金钱板",
         "湘西苗族歌舞", "粤剧经典", "京剧名段", "交响音乐", "彝族火把节歌舞", "杂技"),
        ("专场演出", "巡演", "驻场演出", "惠民演出季", "周末剧场", "进社区演出"),
        ("演出", "剧场", "惠民", "巡演", "戏曲"),
        (20_000, 480_000),
    ),
    "exhibition": Theme(
        ("三星堆青铜文明", "金沙遗址", "蜀锦蜀绣", "大熊猫科普", "唐卡艺术", "巴渝老照片",
         "岭南木雕", "汉代画像砖", "茶马古道", "长江三峡", "川西林盘"),
        ("巡回展", "主题展", "数字展", "图片展", "精品展", "流动博物馆"),
        ("展览", "博物馆", "巡展", "文物", "研学"),
        (30_000, 800_000),
    ),
    "training": Theme(
        ("蜀绣", "剪纸", "川剧唱腔", "竹编", "古琴", "茶艺", "书法", "皮影制作", "民族舞蹈",
         "合唱指挥", "公共文化服务管理", "非遗传承人"),
        ("体验课", "研修班", "公益培训", "大师课", "线上课程", "师资培训"),
        ("培训", "公益课堂", "亲子", "研学", "美育"),
        (3_000, 60_000),
    ),
    "tourism": Theme(
        ("大熊猫基地", "九寨沟", "峨眉山", "都江堰", "稻城亚丁", "武隆天坑", "布达拉宫",
         "张家界", "大足石刻", "宽窄巷子", "阆中古城", "康定情歌"),
        ("研学旅行线路", "文化旅游线路", "夜游项目", "红色旅游线路", "乡村旅游套餐",
         "自驾旅游线路"),
        ("旅游", "研学", "线路", "乡村振兴", "夜游"),
        (5_000, 300_000),
    ),
    "creative-goods": Theme(
        ("大熊猫文创", "三星堆文创", "蜀锦", "川剧脸谱", "熊猫", "藏式", "竹编", "漆器",
         "非遗手作", "博物馆"),
        ("文创礼盒", "文具套装", "冰箱贴系列", "帆布包", "茶具套装", "盲盒", "丝巾"),
        ("文创", "礼品", "伴手礼", "定制", "熊猫"),
        (500, 50_000),
    ),
    "intangible-heritage": Theme(
        ("蜀绣", "藏戏", "川剧变脸", "自贡灯会", "羌绣", "唐卡", "竹编", "皮影戏", "蜀锦织造",
         "苗绣", "湘绣", "潮州木雕", "醒狮"),
        ("非遗展演", "非遗进校园", "非遗传承体验", "非遗市集", "非遗项目展示", "技艺展示"),
        ("非遗", "传承", "手艺", "民俗", "传统工艺"),
        (10_000, 200_000),
    ),
    "digital": Theme(
        ("三星堆", "大熊猫", "川剧", "数字图书馆", "智慧文化馆", "石窟艺术", "古蜀文明",
         "公共文化云"),
        ("VR 沉浸体验", "数字展厅", "线上直播平台", "AR 导览", "数字藏品", "云展览系统"),
        ("数字文化", "VR", "线上", "智慧服务", "直播"),
        (50_000, 1_000_000),
    ),
    "other": Theme(
        ("社区文化", "乡村文化振兴", "全民阅读", "公共文化服务", "群众文艺", "文化志愿"),
        ("策划服务", "活动执行", "运营托管", "咨询服务", "品牌推广"),
        ("公共服务", "社区", "乡村", "阅读", "运营"),
        (5_000, 100_000),
    ),
}

#: Poster colours of each category (top, bottom, accent), matching the stylesheet's.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "performance": ((192, 57, 43), (230, 126, 34), (255, 224, 130)),
    "exhibition": ((109, 76, 65), (200, 161, 74), (255, 236, 179)),
    "training": ((0, 121, 107), (128, 203, 196), (255, 241, 118)),
    "tourism": ((46, 125, 50), (156, 204, 101), (255, 249, 196)),
    "creative-goods": ((173, 20, 87), (244, 143, 177), (255, 235, 238)),
    "intangible-heritage": ((134, 23, 15), (212, 160, 23), (255, 224, 178)),
    "digital": ((40, 53, 147), (121, 134, 203), (178, 235, 242)),
    "other": ((93, 83, 72), (161, 136, 127), (239, 235, 233)),
}
POSTERS_PER_CATEGORY = 3
#: Showcases per hall and day; each one's project gets a short generated video (ffmpeg).
SHOWCASES_PER_DAY = 3
#: Slots after the first day, in UTC: 10:00, 11:00 and 14:00 in Beijing.
SLOT_HOURS_UTC = (2, 3, 6)
#: The CJK font the demo videos draw their titles with (fonts-wqy-microhei).
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
#: A few seconds of low-resolution moving test pattern: quick to make, small to store.
VIDEO_SECONDS = 4
VIDEO_SIZE = "320x180"
#: Videos made by one ffmpeg process.
VIDEO_BATCH = 64
POSTER_SIZE = (960, 640)

FEATURES = (
    "由国家级非遗传承人领衔", "可按需定制内容与规模", "配套讲解与互动体验",
    "支持线上线下结合", "已在多个城市成功落地", "提供全程策划与执行",
    "节假日和文化惠民活动均可安排", "含宣传物料与媒体推广",
)
CATEGORY_WEIGHTS: dict[str, int] = {
    "performance": 18, "exhibition": 12, "training": 10, "tourism": 15, "creative-goods": 15,
    "intangible-heritage": 15, "digital": 8, "other": 7,
}
AUDIENCES = (
    "文化馆、社区和景区驻场", "中小学研学", "公共图书馆阅读推广", "旅游景区夜游",
    "乡镇综合文化站", "企业工会文化活动", "博物馆公共教育", "文化旅游节庆",
)

#: The English twin of every word the demo builds its titles and summaries from, so that the
#: demo's projects carry English text and an English search finds what its Chinese twin finds.
ENGLISH: dict[str, str] = {
    # performance
    "川剧变脸": "Sichuan Opera face-changing", "藏戏": "Tibetan opera",
    "川剧折子戏": "Sichuan Opera highlights", "蜀地民族歌舞": "Sichuan folk song and dance",
    "熊猫主题音乐剧": "panda musical", "清音曲艺": "Sichuan qingyin ballad singing",
    "金钱板": "Sichuan clapper-talk storytelling", "湘西苗族歌舞": "West Hunan Miao song and dance",
    "粤剧经典": "Cantonese opera classics", "京剧名段": "Peking opera arias",
    "交响音乐": "symphonic music", "彝族火把节歌舞": "Yi Torch Festival song and dance",
    "杂技": "acrobatics",
    "专场演出": "special performance", "巡演": "touring show", "驻场演出": "resident show",
    "惠民演出季": "community performance season", "周末剧场": "weekend theatre",
    "进社区演出": "community show",
    "演出": "performance", "剧场": "theatre", "惠民": "public benefit", "戏曲": "opera",
    # exhibition
    "三星堆青铜文明": "Sanxingdui bronze civilisation", "金沙遗址": "Jinsha site",
    "蜀锦蜀绣": "Shu brocade and Shu embroidery", "大熊猫科普": "giant panda science",
    "唐卡艺术": "thangka art", "巴渝老照片": "old photographs of Chongqing",
    "岭南木雕": "Lingnan wood carving", "汉代画像砖": "Han dynasty pictorial bricks",
    "茶马古道": "Ancient Tea Horse Road", "长江三峡": "Three Gorges of the Yangtze",
    "川西林盘": "West Sichuan linpan farmsteads",
    "巡回展": "touring exhibition", "主题展": "themed exhibition", "数字展": "digital exhibition",
    "图片展": "photo exhibition", "精品展": "exhibition of masterpieces",
    "流动博物馆": "mobile museum",
    "展览": "exhibition", "博物馆": "museum", "巡展": "touring exhibition",
    "文物": "cultural relics", "研学": "study tour",
    # training
    "蜀绣": "Shu embroidery", "剪纸": "paper cutting", "川剧唱腔": "Sichuan Opera singing",
    "竹编": "bamboo weaving", "古琴": "guqin", "茶艺": "tea art", "书法": "calligraphy",
    "皮影制作": "shadow puppet making", "民族舞蹈": "ethnic dance",
    "合唱指挥": "choral conducting", "公共文化服务管理": "public cultural service management",
    "非遗传承人": "intangible heritage masters",
    "体验课": "taster class", "研修班": "workshop", "公益培训": "free training",
    "大师课": "master class", "线上课程": "online course", "师资培训": "teacher training",
    "培训": "training", "公益课堂": "free class", "亲子": "family", "美育": "arts education",
    # tourism
    "大熊猫基地": "Giant Panda Base", "九寨沟": "Jiuzhaigou", "峨眉山": "Mount Emei",
    "都江堰": "Dujiangyan", "稻城亚丁": "Daocheng Yading", "武隆天坑": "Wulong karst",
    "布达拉宫": "Potala Palace", "张家界": "Zhangjiajie", "大足石刻": "Dazu rock carvings",
    "宽窄巷子": "Kuanzhai Alleys", "阆中古城": "Langzhong old town",
    "康定情歌": "Kangding Love Song",
    "研学旅行线路": "study tour route", "文化旅游线路": "cultural tour route",
    "夜游项目": "night tour", "红色旅游线路": "red heritage tour route",
    "乡村旅游套餐": "rural tourism package", "自驾旅游线路": "self-drive tour route",
    "旅游": "tourism", "线路": "route", "乡村振兴": "rural revitalisation", "夜游": "night tour",
    # creative goods
    "大熊猫文创": "giant panda creative goods", "三星堆文创": "Sanxingdui creative goods",
    "蜀锦": "Shu brocade", "川剧脸谱": "Sichuan Opera masks", "熊猫": "panda",
    "藏式": "Tibetan style", "漆器": "lacquerware", "非遗手作": "intangible heritage handicraft",
    "文创礼盒": "gift box", "文具套装": "stationery set", "冰箱贴系列": "fridge magnets",
    "帆布包": "canvas bag", "茶具套装": "tea set", "盲盒": "blind box", "丝巾": "silk scarf",
    "文创": "creative goods", "礼品": "gifts", "伴手礼": "souvenirs", "定制": "custom-made",
    # intangible heritage
    "自贡灯会": "Zigong lantern festival", "羌绣": "Qiang embroidery", "唐卡": "thangka",
    "皮影戏": "shadow puppetry", "蜀锦织造": "Shu brocade weaving", "苗绣": "Miao embroidery",
    "湘绣": "Hunan embroidery", "潮州木雕": "Chaozhou wood carving", "醒狮": "lion dance",
    "非遗展演": "intangible heritage show", "非遗进校园": "intangible heritage in schools",
    "非遗传承体验": "intangible heritage experience",
    "非遗市集": "intangible heritage market",
    "非遗项目展示": "intangible heritage showcase", "技艺展示": "craft demonstration",
    "非遗": "intangible heritage", "传承": "heritage transmission", "手艺": "handicraft",
    "民俗": "folk customs", "传统工艺": "traditional crafts",
    # digital
    "三星堆": "Sanxingdui", "大熊猫": "giant panda", "川剧": "Sichuan Opera",
    "数字图书馆": "digital library", "智慧文化馆": "smart cultural centre",
    "石窟艺术": "grotto art", "古蜀文明": "ancient Shu civilisation",
    "公共文化云": "public culture cloud",
    "VR 沉浸体验": "immersive VR experience", "数字展厅": "digital showroom",
    "线上直播平台": "live streaming platform", "AR 导览": "AR guide",
    "数字藏品": "digital collectibles", "云展览系统": "cloud exhibition system",
    "数字文化": "digital culture", "VR": "VR", "线上": "online", "智慧服务": "smart services",
    "直播": "live streaming",
    # other
    "社区文化": "community culture", "乡村文化振兴": "rural cultural revitalisation",
    "全民阅读": "reading for all", "公共文化服务": "public cultural services",
    "群众文艺": "popular arts", "文化志愿": "cultural volunteering",
    "策划服务": "planning service", "活动执行": "event management",
    "运营托管": "managed operation", "咨询服务": "consulting", "品牌推广": "brand promotion",
    "公共服务": "public services", "社区": "community", "乡村": "rural", "阅读": "reading",
    "运营": "operations",
    # features and audiences
    "由国家级非遗传承人领衔": "led by a national intangible heritage master",
    "可按需定制内容与规模": "content and scale made to measure",
    "配套讲解与互动体验": "with guided talks and hands-on activities",
    "支持线上线下结合": "online and on site",
    "已在多个城市成功落地": "already run in many cities",
    "提供全程策划与执行": "planned and run end to end",
    "节假日和文化惠民活动均可安排": "available for holidays and public cultural events",
    "含宣传物料与媒体推广": "publicity material and media promotion included",
    "文化馆、社区和景区驻场": "cultural centres, communities and scenic areas",
    "中小学研学": "school study trips", "公共图书馆阅读推广": "library reading promotion",
    "旅游景区夜游": "night tours of scenic areas", "乡镇综合文化站": "township cultural stations",
    "企业工会文化活动": "company union events", "博物馆公共教育": "museum education",
    "文化旅游节庆": "culture and tourism festivals",
    # institutions
    "文化馆": "Cultural Centre", "群众艺术馆": "Mass Art Centre", "图书馆": "Library",
    "美术馆": "Art Museum",
    "非物质文化遗产保护中心": "Intangible Cultural Heritage Centre",
    "文化旅游发展集团": "Culture and Tourism Group", "演艺有限公司": "Performing Arts Co.",
    "歌舞剧院": "Song and Dance Theatre", "川剧院": "Sichuan Opera Theatre",
    "文化创意有限公司": "Creative Co.", "数字科技有限公司": "Digital Technology Co.",
    "国际旅行社": "International Travel Service", "文化传播有限公司": "Culture Media Co.",
    "艺术培训中心": "Arts Training Centre", "非遗工坊": "Intangible Heritage Workshop",
}


@dataclass(frozen=True)
class DemoFair:
    """What `build_demo_fair` found or made."""

    fair: Fair
    created: bool
    exhibitors: int
    provinces: int
    projects: int
    halls: int


def build_demo_fair(*, media_root: Path, exhibitors: int = EXHIBITORS,
                    projects: int = PROJECTS, posters: int = POSTERS_PER_CATEGORY,
                    seed: int = 2020) -> DemoFair:
    """Find the demo fair, or build it with its exhibitors, projects, halls and demo logins.

    Running it again finds the fair by its name and changes nothing. The data comes from word
    lists with a fixed seed, so every fresh database gets the same fair; each project gets one
    of a few abstract posters drawn in its category's colours, stored like any upload.
    """
    existing = db.session.scalar(select(Fair).where(Fair.name == DEMO_FAIR_NAME))
    if existing is not None:
        return _describe(existing, created=False)
    if not 1 <= exhibitors <= projects:
        raise ValueError("the demo needs an exhibitor, and a project for every exhibitor")
    fair = _build(exhibitors=exhibitors, projects=projects, posters=posters, seed=seed,
                  media_root=media_root)
    return _describe(fair, created=True)


def _describe(fair: Fair, *, created: bool) -> DemoFair:
    figures = exhibitor_service.fair_figures(fair)
    return DemoFair(fair=fair, created=created, exhibitors=figures.exhibitors,
                    provinces=figures.provinces, projects=figures.projects,
                    halls=hall_service.count_halls(fair))


@use_case()
def _build(*, exhibitors: int, projects: int, posters: int, seed: int, media_root: Path
           ) -> Fair:
    # One transaction of bulk inserts: the full fair (317 approved exhibitors, 890 published
    # projects, three halls) takes a few seconds on SQLite.
    rng = random.Random(seed)
    now = utcnow()
    # The fair opened this morning at 09:00 Beijing time and runs for a week.
    opening = now.replace(hour=1, minute=0, second=0, microsecond=0)
    fair = Fair(name=DEMO_FAIR_NAME, starts_at=opening, ends_at=opening + dt.timedelta(days=7),
                status=FairStatus.open)
    organisations = _organisations(rng, exhibitors)
    db.session.add(fair)
    db.session.add_all(organisations)
    db.session.flush()
    db.session.add_all(Hall(fair_id=fair.id, name=name) for name in HALL_NAMES)
    stands = [
        Exhibitor(fair_id=fair.id, organisation_id=organisation.id,
                  status=ExhibitorStatus.approved, decided_at=now)
        for organisation in organisations
    ]
    db.session.add_all(stands)
    _add_logins(exhibiting=organisations[0])
    db.session.flush()
    shown = _add_projects(rng, fair, stands, projects, now,
                          posters=_posters(rng, posters, media_root))
    halls = db.session.scalars(select(Hall).where(Hall.fair_id == fair.id).order_by(Hall.id))
    _schedule_showcases(rng, fair, list(halls), shown, now, media_root=media_root)
    _add_needs(rng, fair, shown, now)
    return fair


#: The demo buyers' procurement needs (供需对接): title, category, region, city, budget in yuan.
NEEDS = (
    ("非遗手工体验课进校园（200名小学生）", "intangible-heritage", "CN-CQ", "渝中区",
     "50000.00", "80000.00"),
    ("春节期间社区文艺演出6场", "performance", "CN-CQ", "江北区", "120000.00", "200000.00"),
    ("公共文化场馆数字化展陈方案", "digital", "CN-SC", "成都市", "300000.00", "500000.00"),
    ("中小学生研学旅游线路采购", "tourism", "CN-SC", "都江堰市", "80000.00", "150000.00"),
    ("文创产品定制（馆藏元素）", "creative-goods", "CN-CQ", "", "20000.00", "60000.00"),
)


def _add_needs(rng: random.Random, fair: Fair, shown: Sequence[Project],
               now: dt.datetime) -> None:
    """The demo buyer's open needs, each with the matching exhibitors told and a few responses
    from them."""
    buyer = account_service.find_user(BUYER_EMAIL)
    if buyer is None or buyer.organisation_id is None:
        return
    by_id = {project.id: project for project in shown}
    for title, category, province, city, low, high in NEEDS:
        need = Need(fair_id=fair.id, buyer_id=buyer.id, organisation_id=buyer.organisation_id,
                    title=title, description_source="", description_html="",
                    category=category, province=province, city=city,
                    budget_min_fen=parse_yuan(low), budget_max_fen=parse_yuan(high),
                    deadline=now + dt.timedelta(days=rng.randint(2, 6)), max_responses=10,
                    response_count=0, status=NeedStatus.open, opened_at=now)
        db.session.add(need)
        db.session.flush()
        need_service.index_need(need)
        found = need_service.match_candidates(need, limit=need_service.MATCH_LIMIT)
        db.session.add_all(NeedMatch(need_id=need.id, exhibitor_id=match.exhibitor_id,
                                     project_id=match.project_id, score=match.score)
                           for match in found)
        for match in found[:3]:
            project = by_id[match.project_id]
            db.session.add(NeedResponse(
                need_id=need.id, project_id=project.id, exhibitor_id=project.exhibitor_id,
                price_fen=min(max(project.price_fen, need.budget_min_fen), need.budget_max_fen),
                note="可按需调整内容与场次。", status=ResponseStatus.submitted))
            need.response_count += 1


def _organisations(rng: random.Random, count: int) -> list[Organisation]:
    """Exhibiting organisations: the host city's cultural centre first, every province once."""
    provinces = list(PROVINCE_WEIGHTS)  # the host's province, CN-SC, comes first
    chosen = provinces[:count] + rng.choices(
        provinces, weights=list(PROVINCE_WEIGHTS.values()), k=max(0, count - len(provinces))
    )
    names = {"成都市文化馆"}
    organisations = [Organisation(name="成都市文化馆", province="CN-SC")]
    for province in chosen[1:]:
        name = _unique(names, lambda province=province: (
            rng.choice(CITIES[province]) + rng.choice(INSTITUTIONS)))
        organisations.append(Organisation(name=name, province=province))
    return organisations


def _unique(taken: set[str], make: Callable[[], str]) -> str:
    """A name not taken yet; after many tries, the last one with a branch number."""
    name = make()
    for _ in range(50):
        if name not in taken:
            break
        name = make()
    else:
        name = f"{name}（第{len(taken)}分部）"
    taken.add(name)
    return name


def _add_logins(*, exhibiting: Organisation) -> None:
    """The three demo logins; an email that is already registered is left as it is."""
    logins = (
        (ORGANISER_EMAIL, ORGANISER_PASSWORD, "大会主办方", Role.organiser, None),
        (EXHIBITOR_EMAIL, EXHIBITOR_PASSWORD, "成都市文化馆 参展联系人", Role.exhibitor,
         exhibiting),
        # The demo buyer's organisation is verified, so that its intents show in the totals.
        (BUYER_EMAIL, BUYER_PASSWORD, "重庆市渝中区 采购联系人", Role.buyer,
         Organisation(name="重庆市渝中区文化和旅游发展委员会", province="CN-CQ",
                      verified_at=utcnow())),
    )
    for email, password, name, role, organisation in logins:
        if account_service.find_user(email) is None:
            db.session.add(User(email=email, password_hash=account_service.hash_password(password),
                                name=name, role=role, organisation=organisation,
                                phone="023-6000 0000" if role is Role.buyer else ""))


def _add_projects(rng: random.Random, fair: Fair, stands: Sequence[Exhibitor], count: int,
                  now: dt.datetime, *, posters: dict[str, list[StoredFile]]) -> list[Project]:
    """Every exhibitor shows one project, the rest go to exhibitors at random; all published."""
    owners = list(stands) + rng.choices(stands, k=count - len(stands))
    categories = list(CATEGORY_WEIGHTS)
    kinds = categories[:count] + rng.choices(
        categories, weights=list(CATEGORY_WEIGHTS.values()), k=max(0, count - len(categories))
    )
    rng.shuffle(kinds)
    projects = [
        _project(rng, fair, owner, category, now - dt.timedelta(minutes=rng.randint(0, 40_000)))
        for owner, category in zip(owners, kinds, strict=True)
    ]
    db.session.add_all(projects)
    db.session.flush()
    # The search postings and counts of all of them, in bulk.
    catalogue.index_projects(projects)
    # Posters are shared: a stored file is named by its hash, so one file serves many rows.
    db.session.execute(insert(Media), [
        {"project_id": project.id, "kind": poster.kind, "sha256": poster.sha256,
         "content_type": poster.content_type, "size": poster.size, "width": poster.width,
         "height": poster.height, "original_name": f"{project.category}.png"}
        for project in projects
        for poster in [rng.choice(posters[project.category])]
    ])
    return projects


def _schedule_showcases(rng: random.Random, fair: Fair, halls: Sequence[Hall],
                        projects: Sequence[Project], now: dt.datetime, *,
                        media_root: Path) -> None:
    """SHOWCASES_PER_DAY showcases per hall for each day of the fair, each project with a
    short video of its own (its title drawn in Chinese), the first of today on air in every
    hall: the halls show moving pictures and a schedule with no media server.

    Today's slots start at the current hour, so that what is on air is scheduled now; the
    demo exhibitor's first project is among today's. Without ffmpeg the schedule is the same
    and the projects keep their posters only.
    """
    days = max(1, (fair.ends_at - fair.starts_at).days)
    hour = now.replace(minute=0, second=0, microsecond=0)
    wanted = min(len(projects), days * len(halls) * SHOWCASES_PER_DAY)
    # The demo login's organisation exhibits the first project (_add_logins).
    chosen = [projects[0], *rng.sample(list(projects[1:]), wanted - 1)]
    slots: list[tuple[Hall, dt.datetime]] = []
    for day in range(days):
        for hall in halls:
            for number in range(SHOWCASES_PER_DAY):
                starts = hour + dt.timedelta(hours=number) if day == 0 else (
                    hour.replace(hour=SLOT_HOURS_UTC[number % len(SLOT_HOURS_UTC)])
                    + dt.timedelta(days=day, hours=number // len(SLOT_HOURS_UTC)))
                slots.append((hall, starts))
    # Today's first slot of each hall comes first, then the rest of today, then later days.
    slots.sort(key=lambda slot: (slot[1], slot[0].id))
    showcases = [
        Showcase(hall_id=hall.id, project_id=project.id, starts_at=starts,
                 ends_at=starts + dt.timedelta(hours=1))
        for (hall, starts), project in zip(slots, chosen, strict=False)
    ]
    db.session.add_all(showcases)
    db.session.flush()
    for hall in halls:
        own = [showcase for showcase in showcases if showcase.hall_id == hall.id]
        if own:
            hall.on_air_showcase_id = min(own, key=lambda showcase: showcase.starts_at).id
    videos = demo_videos([(project.title, hall.name) for (hall, _), project
                          in zip(slots, chosen, strict=False)], media_root=media_root)
    rows = [
        {"project_id": project.id, "kind": video.kind, "sha256": video.sha256,
         "content_type": video.content_type, "size": video.size, "width": None,
         "height": None, "original_name": "showcase.mp4"}
        for project, video in zip(chosen, videos, strict=False) if video is not None
    ]
    if rows:
        db.session.execute(insert(Media), rows)


def demo_videos(titles: Sequence[tuple[str, str]], *, media_root: Path
                ) -> list[StoredFile | None]:
    """A short video for each (title, hall): ffmpeg's moving test pattern with the title drawn
    in Chinese, stored as any upload. Each is made once: a later demo on the same MEDIA_ROOT
    finds it by the hash of what it shows. None for each without ffmpeg or the CJK font."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or not CJK_FONT.exists():
        logger.warning("No ffmpeg or CJK font: the demo showcases get no videos.")
        return [None] * len(titles)
    cache = media_root / "demo-videos"
    cache.mkdir(parents=True, exist_ok=True)
    keys = [hashlib.sha256(f"v2|{VIDEO_SIZE}|{VIDEO_SECONDS}|{title}|{hall}".encode())
            .hexdigest() for title, hall in titles]
    found = {key: _cached(cache / key, media_root) for key in set(keys)}
    missing = [(key, pair) for key, pair in dict(zip(keys, titles, strict=True)).items()
               if found[key] is None]
    for start in range(0, len(missing), VIDEO_BATCH):
        found.update(_make_videos(ffmpeg, missing[start:start + VIDEO_BATCH],
                                  cache=cache, media_root=media_root))
    return [found[key] for key in keys]


def _cached(entry: Path, media_root: Path) -> StoredFile | None:
    if not entry.exists():
        return None
    sha256 = entry.read_text().strip()
    stored = media_files.file_path(media_root, sha256, MediaKind.video)
    if not stored.exists():
        return None
    return StoredFile(kind=MediaKind.video, sha256=sha256, content_type="video/mp4",
                      size=stored.stat().st_size)


def _make_videos(ffmpeg: str, wanted: Sequence[tuple[str, tuple[str, str]]], *, cache: Path,
                 media_root: Path) -> dict[str, StoredFile | None]:
    """Make a batch of videos in one ffmpeg process (its start-up is most of the cost): one
    test pattern, split, with each title drawn on its own copy."""
    with tempfile.TemporaryDirectory(dir=cache) as folder:
        chains = ["[0:v]split=" + str(len(wanted)) + "".join(f"[s{n}]" for n in range(len(wanted)))]
        outputs: list[str] = []
        font = f"fontfile={CJK_FONT}:fontcolor=white"
        for number, (_, (title, hall)) in enumerate(wanted):
            # Text files, not the filter's own quoting: titles hold characters drawtext reads.
            (Path(folder) / f"{number}.title").write_text(title)
            (Path(folder) / f"{number}.hall").write_text(hall)
            chains.append(
                f"[s{number}]drawtext={font}:textfile={folder}/{number}.title:fontsize=18:"
                "box=1:boxcolor=black@0.55:boxborderw=6:x=(w-text_w)/2:y=h-text_h-14,"
                f"drawtext={font}:textfile={folder}/{number}.hall:fontsize=12:box=1:"
                f"boxcolor=0xb3261e@0.8:boxborderw=4:x=w-text_w-8:y=8[o{number}]"
            )
            outputs += ["-map", f"[o{number}]", "-c:v", "libx264", "-preset", "ultrafast",
                        "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an",
                        f"{folder}/{number}.mp4"]
        try:
            subprocess.run(  # noqa: S603 - fixed arguments, our own files
                [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                 f"testsrc2=size={VIDEO_SIZE}:rate=12:duration={VIDEO_SECONDS}",
                 "-filter_complex", ";".join(chains), *outputs],
                check=True, timeout=300, capture_output=True,
            )
        except (OSError, subprocess.SubprocessError) as error:
            logger.warning("ffmpeg made no demo videos: %s", error)
            return {key: None for key, _ in wanted}
        made: dict[str, StoredFile | None] = {}
        for number, (key, _) in enumerate(wanted):
            with (Path(folder) / f"{number}.mp4").open("rb") as video:
                made[key] = media_files.store_upload(video, media_root=media_root)
            (cache / key).write_text(made[key].sha256)  # type: ignore[union-attr]
    return made


def _project(rng: random.Random, fair: Fair, owner: Exhibitor, category: str,
             published_at: dt.datetime) -> Project:
    theme = THEMES[category]
    subject, kind = rng.choice(theme.subjects), rng.choice(theme.formats)
    organisation = owner.organisation
    title = f"{subject}{kind}"
    # Tourism subjects are places themselves; other projects may carry their home town.
    if category != "tourism" and rng.random() < 0.35:
        title = f"{_place(organisation.name)}·{title}"
    features = rng.sample(FEATURES, 2)
    audience = rng.choice(AUDIENCES)
    summary = f"{organisation.name}推出的{subject}{kind}，{features[0]}，适合{audience}。"
    description = (
        f"## 项目亮点\n\n- {features[0]}\n- {features[1]}\n- 适合{audience}\n\n"
        f"## 服务内容\n\n{subject}{kind}包含策划、组织实施与宣传推广，"
        "可根据采购方需求调整规模与时长。\n\n参考价格为单场（单套）价格，批量采购另议。\n"
    )
    low, high = theme.price_yuan
    step = 10 if high <= 50_000 else 100
    price_yuan = rng.randrange(low, high + 1, step)
    tags = [subject, *rng.sample(theme.tags, rng.randint(1, 3))]
    # The English twin, from the same words; the random draws above stay as they were.
    place_en, province_en = _pinyin_name(_place(organisation.name)), province_name(
        organisation.province, "en")
    title_en = f"{ENGLISH[subject]} {ENGLISH[kind]}"
    if title != f"{subject}{kind}":
        title_en = f"{place_en} · {title_en}"
    summary_en = (
        f"{ENGLISH[subject].capitalize()} {ENGLISH[kind]} by {_english_name(organisation.name)}"
        f" ({place_en}, {province_en}): {ENGLISH[features[0]]}, {ENGLISH[features[1]]};"
        f" for {ENGLISH[audience]}. "
        f"Tags: {', '.join(ENGLISH[tag] for tag in dict.fromkeys(tags))}."
    )[:500]
    return Project(
        fair_id=fair.id, exhibitor_id=owner.id, province=organisation.province, title=title,
        category=category, summary=summary, title_en=title_en[:200], summary_en=summary_en,
        description_source=description,
        description_html=exhibitor_service.render_description(description),
        price_fen=parse_yuan(str(price_yuan)), tags=",".join(dict.fromkeys(tags)),
        status=ProjectStatus.published, published_at=published_at,
    )


def _place(organisation_name: str) -> str:
    """成都市文化馆 -> 成都, 重庆市渝中区文化馆 -> 重庆, 阿坝州非遗工坊 -> 阿坝."""
    for mark in ("市", "州"):
        if mark in organisation_name:
            return organisation_name.split(mark)[0]
    return organisation_name[:2]


def _pinyin_name(chinese: str) -> str:
    """成都 -> Chengdu: how places are written in English."""
    return "".join(lazy_pinyin(chinese)).capitalize()


def _english_name(organisation_name: str) -> str:
    """成都市文化馆 -> Chengdu Cultural Centre."""
    for institution in sorted(INSTITUTIONS, key=len, reverse=True):
        if institution in organisation_name:
            return f"{_pinyin_name(_place(organisation_name))} {ENGLISH[institution]}"
    return _pinyin_name(organisation_name)


def _posters(rng: random.Random, count: int, media_root: Path) -> dict[str, list[StoredFile]]:
    """A few abstract posters per category, stored as any upload would be."""
    posters: dict[str, list[StoredFile]] = {}
    for category, palette in PALETTES.items():
        posters[category] = []
        for _ in range(count):
            buffer = io.BytesIO()
            _poster(rng, palette).save(buffer, format="PNG")
            buffer.seek(0)
            posters[category].append(media_files.store_upload(buffer, media_root=media_root))
    return posters


def _poster(rng: random.Random, palette: tuple[tuple[int, int, int], ...]) -> Image.Image:
    """A sky in the category's colours, a sun, and layered hills like a landscape scroll."""
    top, bottom, accent = palette
    width, height = POSTER_SIZE
    sky = Image.linear_gradient("L").resize(POSTER_SIZE)
    image = Image.composite(Image.new("RGB", POSTER_SIZE, bottom),
                            Image.new("RGB", POSTER_SIZE, top), sky)
    layer = Image.new("RGBA", POSTER_SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    radius = rng.randint(70, 130)
    centre = (rng.randint(radius, width - radius), rng.randint(radius, height // 2))
    draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius,
                  centre[1] + radius), fill=(*accent, 210))
    for depth in range(4):
        base = height * (0.5 + depth * 0.13)
        peaks = rng.randint(2, 4)
        phase = rng.uniform(0, 6.3)
        ridge = [
            (x, base - 60 * (1 + math.sin(phase + peaks * math.pi * x / width)) / 2
             - rng.randint(0, 8))
            for x in range(0, width + 40, 40)
        ]
        shade = tuple(int(channel * (0.75 - depth * 0.15)) for channel in top)
        draw.polygon([*ridge, (width, height), (0, height)], fill=(*shade, 150 + depth * 25))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
