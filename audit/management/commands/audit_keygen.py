from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity.heads import key_id, key_pair_write, public_path


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 key pair that signs the audit trail's seal heads: the private"
        " key to PATH (owner-only; never overwritten) and the public key to PATH.pub. Point"
        " AUDIT_SIGNING_KEY_FILE at PATH; give PATH.pub to whoever verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Where to write the private key (PEM).")

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        try:
            private_key = key_pair_write(path)
        except FileExistsError as exc:
            raise CommandError(f"{path} exists: a signing key is never overwritten.") from exc
        except OSError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(
            f"Private key: {path} (keep it off the database host's backups)\n"
            f"Public key:  {public_path(path)}\n"
            f"Key id:      {key_id(private_key.public_key())}"
        )
