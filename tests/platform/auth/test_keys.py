"""The key format: shape, checksum, entropy, and what is stored."""

from __future__ import annotations

import re

from xynergy.platform.auth.keys import generate_key, hash_key, is_well_formed

KEY_SHAPE = re.compile(r"^xyn_(live|test)_[0-9A-Za-z]{49}$")


class TestGenerateKey:
    def test_shape_and_stored_parts(self) -> None:
        generated = generate_key("live")
        assert KEY_SHAPE.match(generated.plaintext)
        assert generated.key_hash == hash_key(generated.plaintext)
        assert len(generated.key_hash) == 64
        assert generated.plaintext.startswith(generated.display_prefix)
        assert generated.plaintext.endswith(generated.last4)
        assert generated.key_hash not in generated.plaintext

    def test_test_environment_prefix(self) -> None:
        assert generate_key("test").plaintext.startswith("xyn_test_")

    def test_keys_do_not_repeat(self) -> None:
        assert len({generate_key().plaintext for _ in range(2000)}) == 2000


class TestIsWellFormed:
    def test_accepts_a_generated_key(self) -> None:
        assert is_well_formed(generate_key().plaintext)

    def test_rejects_a_single_changed_character(self) -> None:
        key = generate_key().plaintext
        position = 20
        swapped = "B" if key[position] == "A" else "A"
        assert not is_well_formed(key[:position] + swapped + key[position + 1 :])

    def test_rejects_wrong_shapes(self) -> None:
        key = generate_key().plaintext
        for candidate in ("", key[:-1], key + "x", key.replace("xyn_", "xyz_"), " " + key):
            assert not is_well_formed(candidate), candidate
