"""Turning a requested WxH hint into what each vendor accepts (aspect ratios, size tiers)."""

ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


def ratio(text: str) -> float:
    a, b = text.split(":")
    return float(a) / float(b)


def nearest_aspect(size: tuple[int, int] | None, choices=ASPECTS, default: str = "1:1") -> str:
    if not size:
        return default
    want = size[0] / size[1]
    return min(choices, key=lambda c: abs(ratio(c) - want))


def tier(size: tuple[int, int] | None, default: str = "1K") -> str:
    """Google's / fal's resolution tiers: 1K, 2K, 4K by the longer side."""
    if not size:
        return default
    side = max(size)
    return "1K" if side <= 1280 else "2K" if side <= 2560 else "4K"


def openai_size(size: tuple[int, int] | None) -> str:
    """GPT Image accepts square, landscape and portrait presets; pick the closest shape."""
    if not size:
        return "auto"
    w, h = size
    if abs(w - h) <= min(w, h) * 0.15:
        return "1024x1024"
    return "1536x1024" if w > h else "1024x1536"
