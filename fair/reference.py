"""Reference data: provinces (ISO 3166-2:CN) and project categories, with zh and en names."""

from __future__ import annotations

from typing import NamedTuple


class Name(NamedTuple):
    zh: str
    en: str


#: All 34 provincial-level divisions.
PROVINCES: dict[str, Name] = {
    "CN-BJ": Name("北京市", "Beijing"),
    "CN-TJ": Name("天津市", "Tianjin"),
    "CN-HE": Name("河北省", "Hebei"),
    "CN-SX": Name("山西省", "Shanxi"),
    "CN-NM": Name("内蒙古自治区", "Inner Mongolia"),
    "CN-LN": Name("辽宁省", "Liaoning"),
    "CN-JL": Name("吉林省", "Jilin"),
    "CN-HL": Name("黑龙江省", "Heilongjiang"),
    "CN-SH": Name("上海市", "Shanghai"),
    "CN-JS": Name("江苏省", "Jiangsu"),
    "CN-ZJ": Name("浙江省", "Zhejiang"),
    "CN-AH": Name("安徽省", "Anhui"),
    "CN-FJ": Name("福建省", "Fujian"),
    "CN-JX": Name("江西省", "Jiangxi"),
    "CN-SD": Name("山东省", "Shandong"),
    "CN-HA": Name("河南省", "Henan"),
    "CN-HB": Name("湖北省", "Hubei"),
    "CN-HN": Name("湖南省", "Hunan"),
    "CN-GD": Name("广东省", "Guangdong"),
    "CN-GX": Name("广西壮族自治区", "Guangxi"),
    "CN-HI": Name("海南省", "Hainan"),
    "CN-CQ": Name("重庆市", "Chongqing"),
    "CN-SC": Name("四川省", "Sichuan"),
    "CN-GZ": Name("贵州省", "Guizhou"),
    "CN-YN": Name("云南省", "Yunnan"),
    "CN-XZ": Name("西藏自治区", "Tibet"),
    "CN-SN": Name("陕西省", "Shaanxi"),
    "CN-GS": Name("甘肃省", "Gansu"),
    "CN-QH": Name("青海省", "Qinghai"),
    "CN-NX": Name("宁夏回族自治区", "Ningxia"),
    "CN-XJ": Name("新疆维吾尔自治区", "Xinjiang"),
    "CN-TW": Name("台湾省", "Taiwan"),
    "CN-HK": Name("香港特别行政区", "Hong Kong"),
    "CN-MO": Name("澳门特别行政区", "Macao"),
}

CATEGORIES: dict[str, Name] = {
    "performance": Name("演出", "Performance"),
    "exhibition": Name("展览", "Exhibition"),
    "training": Name("培训", "Training"),
    "tourism": Name("旅游", "Tourism"),
    "creative-goods": Name("文创产品", "Creative goods"),
    "intangible-heritage": Name("非遗", "Intangible heritage"),
    "digital": Name("数字文化", "Digital"),
    "other": Name("其他", "Other"),
}


#: The event the demo fair replays (DESIGN.md), under its own name.
REFERENCE_EVENT_NAME = "“成渝地•巴蜀情”2020年成渝地区文化和旅游公共服务及产品采购大会"


def province_name(code: str, locale: str = "zh") -> str:
    """The province's name in the locale, or the code itself when unknown."""
    name = PROVINCES.get(code)
    if name is None:
        return code
    return name.zh if locale.startswith("zh") else name.en


def category_name(code: str, locale: str = "zh") -> str:
    """The category's name in the locale, or the code itself when unknown."""
    name = CATEGORIES.get(code)
    if name is None:
        return code
    return name.zh if locale.startswith("zh") else name.en
