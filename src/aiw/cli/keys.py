"""``aiw keys``: API keys bound to one role each, stored only as hashes."""

from __future__ import annotations

import typer

from aiw.cli._common import actor, console, table, workspace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


@app.command()
def create(
    role: str = typer.Option(..., help="viewer | analyst | data_scientist | approver | admin"),
    name: str = typer.Option(None, help="A name to recognise the key by (default: <role>-key)."),
) -> None:
    """Create a key and print its secret once (it is never shown again)."""
    key, secret = workspace().keys.create(name or f"{role}-key", role, actor=actor())
    console.print(f"Created key [bold]{key.id}[/] ({key.name}, role {key.role}). Store this secret now:")
    print(secret)


@app.command("list")
def list_keys(all_keys: bool = typer.Option(True, "--all/--active", help="Include revoked keys.")) -> None:
    """List keys (ids, names, roles; never secrets)."""
    keys = workspace().keys.list(include_revoked=all_keys)
    table(
        "API keys",
        ["id", "name", "role", "created", "by", "status"],
        [
            (
                k.id,
                k.name,
                k.role,
                k.created_at.isoformat(timespec="seconds"),
                k.created_by,
                "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
            )
            for k in keys
        ],
    )


@app.command()
def revoke(key_id: str = typer.Argument(..., help="The key id shown by 'aiw keys list'.")) -> None:
    """Revoke a key at once."""
    key = workspace().keys.revoke(key_id, actor=actor())
    console.print(f"Revoked key [bold]{key.id}[/] ({key.name}).")
