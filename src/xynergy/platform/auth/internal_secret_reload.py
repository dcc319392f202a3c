"""The internal token secrets as a reloadable part: rotated across replicas without a restart.

Three settings, each from the environment or a mounted file (``<NAME>_FILE``):
the signing secret, a *next* one and a *previous* one, both only accepted. A
rotation (docs/runbooks.md) never has a replica sign with a secret another
replica refuses:

1. NEXT=new on every replica: all accept new, all still sign with old.
2. SECRET=new, PREVIOUS=old on each replica at its own moment: one that signs
   new is accepted by the others (NEXT=new), one still signing old by those
   already switched (PREVIOUS=old).
3. Once every replica signs new and one token lifetime has passed, PREVIOUS
   goes (or is set to new: a next or previous equal to the signing secret adds
   nothing, so a file that cannot be removed live is simply made equal).

A reload that would break that promise is refused and the running set stays:
a secret shorter than the minimum, no signing secret in production, or a
signing secret removed once one was configured (the generated development
secret that would take its place is accepted by no peer).
"""

from __future__ import annotations

from pydantic import SecretStr

from xynergy.platform.auth.internal_tokens import InternalTokens, TokenSecrets, development_secret
from xynergy.platform.config import MIN_INTERNAL_SECRET_LENGTH, Settings
from xynergy.platform.logging import get_logger
from xynergy.platform.secrets import SecretError, SecretReader, Swap

__all__ = ["NEXT", "PART_NAME", "PREVIOUS", "SIGNING", "InternalSecretPart"]

log = get_logger(__name__)

PART_NAME = "internal-token"
SIGNING = "XYNERGY_INTERNAL_TOKEN_SECRET"  # noqa: S105 - a variable name
NEXT = "XYNERGY_INTERNAL_TOKEN_NEXT_SECRET"  # noqa: S105 - a variable name
PREVIOUS = "XYNERGY_INTERNAL_TOKEN_PREVIOUS_SECRET"  # noqa: S105 - a variable name


class InternalSecretPart:
    """Reads, checks and swaps in the internal token secrets of one process."""

    name = PART_NAME

    def __init__(self, *, settings: Settings, tokens: InternalTokens) -> None:
        self._settings = settings
        self._tokens = tokens
        self._signing_configured = False

    def prepare(self, reader: SecretReader) -> Swap:
        """The new secret set, checked; the returned swap puts it in use.

        Raises:
            SecretError: a secret is unreadable or refused (named, never shown).
        """
        # Everything is read before anything is checked, so a refusal reports
        # every changed secret (as not applied), not only the first bad one.
        read = {
            name: _read(reader, name, started_with)
            for name, started_with in (
                (SIGNING, self._settings.internal_token_secret),
                (NEXT, self._settings.internal_token_next_secret),
                (PREVIOUS, self._settings.internal_token_previous_secret),
            )
        }
        for name, value in read.items():
            if value is not None and len(value) < MIN_INTERNAL_SECRET_LENGTH:
                raise SecretError(name, f"shorter than {MIN_INTERNAL_SECRET_LENGTH} characters")
        configured_signing = read[SIGNING]
        configured = configured_signing is not None
        signing = (
            self._fallback_signing_secret()
            if configured_signing is None
            else configured_signing.encode()
        )
        also_accepted = [value.encode() for value in (read[NEXT], read[PREVIOUS]) if value]
        new = TokenSecrets.of(signing, *also_accepted)

        def swap() -> None:
            self._tokens.install(new)
            self._signing_configured = configured
            # Counts only: how many secrets are accepted tells which step a replica is at.
            log.info(
                "internal_token.secrets_in_use",
                signing=SIGNING if configured else "generated",
                accepted=len(new.accepted),
            )

        return swap

    def _fallback_signing_secret(self) -> bytes:
        if self._settings.environment == "production":
            raise SecretError(SIGNING, "production requires a signing secret")
        if self._signing_configured:
            # Falling back to the generated secret would have this replica sign
            # tokens no peer accepts.
            raise SecretError(
                SIGNING, "cannot be removed while serving; rotate it instead (docs/runbooks.md)"
            )
        return development_secret(self._settings.data_dir)


def _read(reader: SecretReader, name: str, started_with: SecretStr | None) -> str | None:
    # What the environment names is read again at every reload; a value given to
    # Settings directly (tests, an embedding program) stays as started.
    loaded = reader.secret(name)
    value = loaded.value if loaded is not None else started_with
    return None if value is None else value.get_secret_value()
