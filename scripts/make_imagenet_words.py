"""Write ``perception/imagenet_words.tsv``: each ImageNet class -> the everyday words above it.

Why: the packaged classifier names 1000 fine-grained ImageNet classes ("sulphur-crested
cockatoo", "minivan"), but people ask about "a bird" or "a car". WordNet already knows that a
cockatoo is a parrot is a bird is an animal: every ImageNet class *is* a WordNet 3.0 noun synset
(its wnid, ``n01819313``, is the synset's offset). This script walks each class's hypernyms
(all paths) and keeps the ancestors whose name is an everyday word from :data:`EVERYDAY`, nearest
first. The result is committed, so the runtime needs no WordNet.

Inputs (read, never downloaded):
  * WordNet 3.0 ``data.noun`` — Debian's ``wordnet-base`` package
    (``apt-get download wordnet-base && dpkg-deb -x wordnet-base*.deb DIR``; the file is
    ``DIR/usr/share/wordnet/data.noun``, or ``/usr/share/wordnet/data.noun`` once installed);
  * the 1000 wnids in class-index order — ``timm``'s ``data/_info/imagenet_synsets.txt``
    (ImageNet-1k's index order is the sorted wnids).

Usage: python scripts/make_imagenet_words.py [--wordnet DIR] [--synsets FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "src/eventvstream/perception/imagenet_labels.txt"
OUT = ROOT / "src/eventvstream/perception/imagenet_words.tsv"

# WordNet lemma of an ancestor synset -> the everyday word used for it. Chosen from the ancestor
# lemmas that cover ImageNet-1k (basic-level categories people name things by); the technical
# levels in between (placental, passerine, instrumentality, wheeled_vehicle...) are left out.
EVERYDAY: dict[str, str] = {
    # animals
    "animal": "animal",
    "mammal": "mammal",
    "bird": "bird",
    "parrot": "parrot",
    "bird_of_prey": "bird of prey",
    "duck": "duck",
    "aquatic_bird": "water bird",
    "dog": "dog",
    "domestic_cat": "cat",
    "cat": "cat",
    "big_cat": "big cat",
    "wolf": "wolf",
    "fox": "fox",
    "bear": "bear",
    "monkey": "monkey",
    "ape": "ape",
    "primate": "primate",
    "rodent": "rodent",
    "rabbit": "rabbit",
    "leporid": "rabbit",
    "equine": "horse",
    "swine": "pig",
    "cattle": "cattle",
    "sheep": "sheep",
    "goat": "goat",
    "antelope": "antelope",
    "elephant": "elephant",
    "whale": "whale",
    "fish": "fish",
    "shark": "shark",
    "ray": "ray",
    "snake": "snake",
    "lizard": "lizard",
    "turtle": "turtle",
    "frog": "frog",
    "crocodilian_reptile": "crocodile",
    "reptile": "reptile",
    "amphibian": "amphibian",
    "insect": "insect",
    "butterfly": "butterfly",
    "beetle": "beetle",
    "spider": "spider",
    "crab": "crab",
    "lobster": "lobster",
    "mollusk": "shellfish",
    "crustacean": "shellfish",
    "worm": "worm",
    # vehicles and places
    "vehicle": "vehicle",
    "car": "car",
    "truck": "truck",
    "bus": "bus",
    "van": "van",
    "boat": "boat",
    "ship": "ship",
    "aircraft": "aircraft",
    "airplane": "airplane",
    "locomotive": "train",
    "train": "train",
    "bicycle": "bicycle",
    "motorcycle": "motorcycle",
    "sled": "sled",
    "building": "building",
    "dwelling": "house",
    "bridge": "bridge",
    "place_of_worship": "church",
    "shop": "shop",
    "fence": "fence",
    "geological_formation": "landscape",
    "natural_elevation": "hill",
    "mountain": "mountain",
    "tower": "tower",
    "mercantile_establishment": "shop",
    # things
    "furniture": "furniture",
    "chair": "chair",
    "table": "table",
    "baby_bed": "bed",
    "seat": "seat",
    "lamp": "lamp",
    "clock": "clock",
    "computer": "computer",
    "screen": "screen",
    "telephone": "phone",
    "keyboard": "keyboard",
    "appliance": "appliance",
    "container": "container",
    "bag": "bag",
    "box": "box",
    "bottle": "bottle",
    "jar": "jar",
    "pot": "pot",
    "glass": "glass",
    "plate": "plate",
    "tool": "tool",
    "knife": "knife",
    "firearm": "gun",
    "weapon": "weapon",
    "musical_instrument": "musical instrument",
    "guitar": "guitar",
    "ball": "ball",
    "toy": "toy",
    "sports_equipment": "sports equipment",
    "clothing": "clothing",
    "garment": "clothing",
    "headdress": "hat",
    "footwear": "shoe",
    "helmet": "helmet",
    "food": "food",
    "edible_fruit": "fruit",
    "vegetable": "vegetable",
    "bread": "bread",
    "dish": "dish",
    "dessert": "dessert",
    "beverage": "drink",
    "camera": "camera",
    "machine": "machine",
    "pen": "pen",
    "watch": "watch",
    "sign": "sign",
    "plant": "plant",
    "flower": "flower",
    "fungus": "mushroom",
    "person": "person",
}
MAX_WORDS = 4


def read_wordnet(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) for every noun synset in ``data.noun``."""
    synsets: dict[str, tuple[list[str], list[str]]] = {}
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split(" | ")[0].split()
            count = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].lower() for i in range(count)]
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = []
            for i in range(pointers):
                symbol, offset, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(offset)
            synsets[fields[0]] = (lemmas, hypernyms)
    return synsets


def everyday_chain(offset: str, synsets: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The everyday words of the ancestors of ``offset``, nearest first (breadth-first)."""
    words: list[str] = []
    seen = {offset}
    queue = deque(synsets[offset][1])
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        lemmas, hypernyms = synsets[current]
        word = next((EVERYDAY[lemma] for lemma in lemmas if lemma in EVERYDAY), None)
        if word and word not in words:
            words.append(word)
        queue.extend(hypernyms)
    if "vehicle" in words and "container" in words:  # WordNet files wheeled vehicles under both
        words.remove("container")
    return words[:MAX_WORDS]


def default_synsets() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("timm is not installed: give --synsets (1000 wnids, class order)")
    return Path(spec.submodule_search_locations[0]) / "data/_info/imagenet_synsets.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--synsets", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    synsets = read_wordnet(args.wordnet / "data.noun")
    wnids = (args.synsets or default_synsets()).read_text().split()
    names = [line for line in LABELS.read_text("utf-8").splitlines() if line]
    if len(wnids) != 1000 or len(names) != 1000:
        raise SystemExit(f"expected 1000 wnids and names, got {len(wnids)} and {len(names)}")
    lines = ["# index\twnid\tname\teveryday words (nearest first); made by " + Path(__file__).name]
    for index, (wnid, name) in enumerate(zip(wnids, names, strict=True)):
        chain = [w for w in everyday_chain(wnid[1:], synsets) if w != name]
        lines.append(f"{index}\t{wnid}\t{name}\t{'|'.join(chain)}")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    covered = sum(1 for line in lines[1:] if line.split("\t")[3])
    print(f"wrote {args.out} ({covered}/1000 classes have everyday words)")


if __name__ == "__main__":
    main()
