"""Deliver one notification to every channel, each on its own: a record before each
attempt, retries with backoff (or the channel's retry_after), and the CLI line after the
last failure so that nothing is lost silently."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from collections.abc import Awaitable, Callable, Sequence

import httpx

from fleet_tui.config import NotificationSettings
from fleet_tui.domain.retry import backoff_delay
from fleet_tui.infra.channels.base import Channel, ChannelError, Notification, RateLimited
from fleet_tui.infra.channels.cli import CliChannel
from fleet_tui.infra.channels.discord import DiscordChannel
from fleet_tui.infra.channels.telegram import TelegramChannel

log = logging.getLogger(__name__)

RecordAttempt = Callable[[str, int], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer is not waited on blindly
STDERR_FALLBACK = CliChannel()  # stateless (finds sys.stderr at send time), so one serves every call


@dataclass(frozen=True)
class DeliveryOutcome:
    channel: str
    delivered: bool
    attempts: int
    last_error: str | None = None
    fallback_written: bool = False


def retry_delay(attempt: int, error: ChannelError, *, base_s: float, cap_s: float,
                max_retry_after_s: float = MAX_RETRY_AFTER_S) -> float:
    """The channel's own retry_after when it gave one (even above cap_s), else
    min(base * 2^attempt, cap) with attempt counted from 0."""
    if isinstance(error, RateLimited) and error.retry_after_s is not None:
        return min(max(error.retry_after_s, 0.0), max_retry_after_s)
    return backoff_delay(attempt, base_s=base_s, cap_s=cap_s, jitter_s=0.0)


async def deliver(
    n: Notification,
    channels: Sequence[Channel],
    *,
    record_attempt: RecordAttempt | None = None,
    sleep: Sleep = asyncio.sleep,
    base_s: float = 1.0,
    cap_s: float = 30.0,
    max_attempts: int = 4,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
    fallback: Channel | None = STDERR_FALLBACK,
) -> dict[str, DeliveryOutcome]:
    """record_attempt(channel name, attempt number from 1) runs before each attempt."""

    async def one(channel: Channel) -> DeliveryOutcome:
        last_error = "no attempt made"
        for attempt in range(max_attempts):
            if record_attempt is not None:
                try:
                    await record_attempt(channel.name, attempt + 1)
                except Exception:  # a lost record must not cost the operator the message
                    log.exception("recording %s attempt %d failed", channel.name, attempt + 1)
            try:
                await channel.send(n)
                return DeliveryOutcome(channel.name, True, attempt + 1)
            except ChannelError as exc:
                error: ChannelError = exc
            except Exception as exc:  # a channel bug is that channel's failure only
                error = ChannelError(f"{channel.name}: {type(exc).__name__}", retryable=False)
            last_error = str(error)
            log.warning("notification %s via %s failed (attempt %d/%d): %s",
                        n.event_id, channel.name, attempt + 1, max_attempts, last_error)
            if not error.retryable or attempt + 1 == max_attempts:
                return DeliveryOutcome(channel.name, False, attempt + 1, last_error)
            await sleep(retry_delay(attempt, error, base_s=base_s, cap_s=cap_s,
                                    max_retry_after_s=max_retry_after_s))
        return DeliveryOutcome(channel.name, False, max_attempts, last_error)

    results = await asyncio.gather(*(one(channel) for channel in channels))
    outcomes = {outcome.channel: outcome for outcome in results}
    failed = [o for o in results if not o.delivered]
    fallback_delivered = fallback is not None and any(
        o.delivered and o.channel == fallback.name for o in results)
    if failed and fallback is not None and not fallback_delivered:
        try:
            await fallback.send(n)
        except Exception:
            log.exception("the fallback channel failed too for %s", n.event_id)
        else:
            for outcome in failed:
                outcomes[outcome.channel] = DeliveryOutcome(
                    outcome.channel, False, outcome.attempts, outcome.last_error, True)
    return outcomes


def build_channels(settings: NotificationSettings, client: httpx.AsyncClient) -> list[Channel]:
    """The configured remote channels; with none configured, the CLI line is the channel."""
    channels: list[Channel] = []
    if settings.discord_webhook_url:
        channels.append(DiscordChannel(settings.discord_webhook_url.get_secret_value(), client))
    if settings.telegram_bot_token and settings.telegram_chat_id:
        channels.append(TelegramChannel(settings.telegram_bot_token.get_secret_value(), settings.telegram_chat_id,
                                        client, api_base=settings.telegram_api_base))
    return channels or [CliChannel()]
