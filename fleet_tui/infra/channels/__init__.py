"""Notification channels (Discord, Telegram, CLI) and their independent delivery."""

from __future__ import annotations

from fleet_tui.infra.channels.base import (
    Channel,
    ChannelError,
    Notification,
    NotificationType,
    Outcome,
    RateLimited,
)
from fleet_tui.infra.channels.cli import CliChannel
from fleet_tui.infra.channels.discord import DiscordChannel
from fleet_tui.infra.channels.dispatch import DeliveryOutcome, build_channels, deliver
from fleet_tui.infra.channels.telegram import TelegramChannel, escape_markdown_v2

__all__ = [
    "Channel", "ChannelError", "CliChannel", "DeliveryOutcome", "DiscordChannel",
    "Notification", "NotificationType", "Outcome", "RateLimited", "TelegramChannel",
    "build_channels", "deliver", "escape_markdown_v2",
]
