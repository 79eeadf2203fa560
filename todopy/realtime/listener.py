"""The process's one LISTEN connection: connect, listen, hand each notification on, reconnect with backoff."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import gevent
import pgpubsub

from todopy import db
from todopy.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class Listener:
    """Runs `on_notification(channel, payload)` for each notification on `channels`.

    `on_connect(again)` runs once listening (again: after a lost connection), before any
    notification, so whatever was missed meanwhile can be read; `on_lost()` once the
    connection is gone. Between tries it waits 0.1 s, doubling up to `max_backoff`.
    """

    def __init__(self, dsn: str, channels: Iterable[str], *, on_notification: Callable[[str, str], None],
                 on_connect: Callable[[bool], None], on_lost: Callable[[], None], max_backoff: float = 2.0) -> None:
        self.dsn = dsn
        self.channels = tuple(channels)
        self.on_notification = on_notification
        self.on_connect = on_connect
        self.on_lost = on_lost
        self.max_backoff = max_backoff
        self.listening = False

    def run_forever(self) -> None:
        delay, connected_before = 0.1, False
        while True:
            conn = None
            try:
                conn = db.connect(self.dsn, timeout=5, application_name="todopy-listener")
                conn.autocommit = True
                pubsub = pgpubsub.PubSub(conn)
                for channel in self.channels:
                    pubsub.listen(channel)
                self.listening = True
                if connected_before:
                    log.info("change listener reconnected; catching up every followed list from the change log")
                self.on_connect(connected_before)
                connected_before, delay = True, 0.1
                while True:
                    # Notifications that arrive with a query's results wait in conn.notifies,
                    # not on the socket: blocking in select() would leave them unhandled.
                    for event in pubsub.get_events(select_timeout=0 if conn.notifies else 30) or ():
                        self.on_notification(event.channel, event.payload)
            except (DatabaseUnavailable, *db.CONNECTION_ERRORS) as error:
                if self.listening or not connected_before:
                    log.warning("change listener lost the database (%s); retrying with backoff",
                                db.first_line(error))
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("change listener failed; restarting it")
            finally:
                self.listening = False
                self.on_lost()
                if conn is not None:
                    conn.close()
            gevent.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
