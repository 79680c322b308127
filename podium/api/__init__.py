"""The HTTP API (`podium api`): what the history store recorded, trigger and cancel."""

from podium.api.app import create_app

__all__ = ["create_app"]
