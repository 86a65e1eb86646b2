"""`list`'s table without a row per name is the one columnize would print."""

import random

from keymgmt_cli.cli.output import columnize, key_list


def test_key_list_is_columnize_of_one_column():
    rng = random.Random(15)
    cases = [[], [""], [" a "], ["b", "a", "", " c"], [f"k-{i:05d}" for i in range(1000)][::-1]]
    cases += [[rng.choice(["x" * rng.randint(0, 9), " y ", "z-1"]) for _ in range(rng.randint(0, 20))]
              for _ in range(200)]
    for keys in cases:
        assert key_list(keys) == columnize([["Keys"], ["----"], *[[k] for k in sorted(keys)]]), keys
    assert key_list(["b", "a"]) == "Keys\n----\na\nb"
