"""Texts for the reference comparison with transformers: prose, code, numbers, other scripts, emoji, special
tokens, repetition, and two long documents whose attention rows reach past 256 queries (stored as float16 by
the engine) and, for the longest, past 512 (analysed in chunks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    parse_specials: bool = False  # typed "<|im_start|>" etc. become the special tokens
    start_token: bool = True  # the engine puts <|endoftext|> (id 0) first


LIGHTHOUSE = (
    "Before radio beacons and satellite fixes, a lighthouse was the most reliable way to tell a sailor where the "
    "coast was. Each tower had its own signature: a pattern of flashes, a colour, a period measured in seconds, "
    "so that a navigator who counted carefully could name the light and therefore the headland beneath it. The "
    "keepers who tended them lived by routine. At dusk they climbed the spiral stairs, trimmed the wicks, polished "
    "the lenses until not a fingerprint remained, and wound the clockwork that turned the great glass assembly. "
    "Through the night they returned every few hours to check the flame and the weights. In fog, when the beam was "
    "useless, they sounded a horn or struck a bell, sometimes for days without rest. Supplies came by boat once a month, weather permitting, and a keeper's "
    "family learned to store flour, oil and patience in equal measure.\n\n"
    "The lenses themselves were a marvel. Augustin Fresnel realised that most of the glass in a thick lens does "
    "nothing but absorb light, so he cut it away, leaving concentric rings of prisms that bent the rays just as "
    "well. A first-order lens stood taller than a person and could be seen more than twenty miles out to sea. "
    "Today almost every light is automated, run by sensors and solar panels, and many of the old towers have "
    "become museums, guest houses or simply landmarks that hikers use to measure how far they have walked along "
    "the cliffs. Yet people still climb them at sunset, count the flashes of the lights across the bay, and "
    "wonder what it was like to keep one burning through a winter storm."
)

NOTEBOOK = (
    "# Monthly rainfall report\n\n"
    "The table lists rainfall in millimetres for three stations.\n\n"
    "| month | Aberdeen | Lisbon | Nairobi |\n|---|---:|---:|---:|\n"
    "| Jan | 84.2 | 99.9 | 57.3 |\n| Feb | 58.6 | 86.7 | 42.1 |\n| Mar | 61.0 | 58.1 | 92.6 |\n"
    "| Apr | 50.4 | 65.2 | 219.4 |\n\n"
    "```python\nimport statistics\n\n\ndef summarise(rows: dict[str, list[float]]) -> dict[str, tuple[float, float]]:\n"
    '    """Mean and standard deviation of each station\'s monthly rainfall."""\n'
    "    out = {}\n    for station, values in rows.items():\n"
    "        if len(values) < 2:\n            raise ValueError(f\"{station}: need at least two months\")\n"
    "        out[station] = (statistics.mean(values), statistics.stdev(values))\n    return out\n\n\n"
    "rows = {\n    \"Aberdeen\": [84.2, 58.6, 61.0, 50.4, 54.9, 53.1],\n"
    "    \"Lisbon\": [99.9, 86.7, 58.1, 65.2, 52.3, 13.6],\n"
    "    \"Nairobi\": [57.3, 42.1, 92.6, 219.4, 176.6, 35.0],\n}\n"
    "for name, (mean, sd) in sorted(summarise(rows).items()):\n"
    "    print(f\"{name:>10}: {mean:6.1f} ± {sd:5.1f} mm\")\n```\n\n"
    "Nairobi has two rainy seasons: the long rains peak in April and May, the short rains in November. "
    "Les précipitations à Lisbonne diminuent fortement en été; in Nairobi regnet es im April am meisten. "
    "東京の六月は梅雨で雨が多い。 Remember: 1 inch = 25.4 mm, so 219.4 mm ≈ 8.64 in. 🌧️☔🌦️"
)

CASES = [
    Case("cat", "The cat sat on the"),
    Case("question", "How many r's are in strawberry?"),
    Case("bank", "I sat on the bank of the river. Then I went to the bank to deposit money."),
    Case("story", "Once upon a time, in a village at the edge of a dark forest, there lived an old clockmaker who"),
    Case("facts", "The capital of Australia is Canberra, not Sydney, and the capital of Canada is"),
    Case(
        "python", "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
    ),
    Case("javascript", "const total = items.filter(x => x.price > 10).reduce((s, x) => s + x.price, 0);"),
    Case(
        "sql", "SELECT name, COUNT(*) AS n FROM orders WHERE created_at >= '2024-01-01' GROUP BY name ORDER BY n DESC;"
    ),
    Case("arithmetic", "12 + 35 = 47\n100 - 58 = 42\n7 * 8 = 56\n144 / 12 ="),
    Case("decimals", "π ≈ 3.14159265358979, e ≈ 2.71828, and 1,000,000 has six zeros; 0.1 + 0.2 = 0.30000000000000004"),
    Case("dates", "Meeting moved from 2024-03-15 09:30 to 2024-03-18 14:00 (UTC+1), room B-204."),
    Case("french", "Le petit prince demanda au renard pourquoi les roses étaient si importantes."),
    Case("german", "Die Straßenbahn fährt heute wegen Bauarbeiten nur bis zur Haltestelle Hauptbahnhof."),
    Case("chinese", "今天天气很好，我们去公园散步吧。机器学习正在改变世界。"),
    Case("japanese_korean", "猫が好きです。 고양이를 좋아해요. Я люблю кошек."),
    Case("arabic_hindi", "مرحبا بكم في الدرس الأول. नमस्ते, आज हम गणित सीखेंगे।"),
    Case("emoji", "Party time 🎉🎉 with pizza 🍕, cake 🎂 and friends 👩‍👩‍👧‍👦! Thumbs 👍🏽 up ❤️"),
    Case("repeated", "the the the the the the the the the the the the the the the the"),
    Case("counting", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"),
    Case("abab", "ab ab ab ab ab ab ab ab xy xy xy xy ab ab ab ab"),
    Case("whitespace", "  leading spaces,\ttabs\tand\n\n\nblank lines   \n"),
    Case(
        "chat",
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        parse_specials=True,
    ),
    Case("no_start_token", "Without a start token the first word has no context", start_token=False),
    Case("lighthouse", LIGHTHOUSE),  # > 256 tokens: two forward calls, rows from 256 on stored float16
    Case("notebook", NOTEBOOK),  # > 512 tokens: the engine runs chunks of 64 rows
]
