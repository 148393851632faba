"""AMQP checks against a running box, used by `make run`, the tests and the benchmarks."""

from __future__ import annotations

import argparse
import ssl
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions


@dataclass(frozen=True)
class RoundTrip:
    """Result of one publish and consume through a temporary queue."""

    body: bytes
    seconds: float


def _publish_persistent(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, body: bytes) -> None:
    """Publish one persistent message to a queue through the default exchange."""
    channel.basic_publish(
        exchange="",
        routing_key=queue,
        body=body,
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        mandatory=True,
    )


def round_trip(url: str, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> RoundTrip:
    """Publish one persistent message with publisher confirms and consume it back.

    Args:
        url: AMQP URL with credentials, for example amqp://admin:secret@127.0.0.1:5672/%2F.
        timeout: Seconds allowed for the connection and for the message to come back.
        tls: Connect with TLS, verifying the server with this context (its host name: "localhost").

    Returns:
        The body consumed and the seconds the whole round trip took.

    Raises:
        pika.exceptions.AMQPError: The broker refused the connection or the credentials.
        TimeoutError: The message did not come back within the timeout.
    """
    started = time.monotonic()
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1
    if tls is not None:
        parameters.ssl_options = pika.SSLOptions(tls, server_hostname="localhost")

    body = uuid.uuid4().bytes
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
        _publish_persistent(channel, queue, body)

        deadline = started + timeout
        while time.monotonic() < deadline:
            method, _properties, received = channel.basic_get(queue=queue, auto_ack=True)
            if method is not None:
                if received != body:
                    raise RuntimeError(f"queue {queue} returned another message than the one published")
                return RoundTrip(body=received, seconds=time.monotonic() - started)
            connection.sleep(0.05)
    raise TimeoutError(f"the message published to {queue} did not come back within {timeout} s")


def wait_for_round_trip(url: str, timeout: float, tls: ssl.SSLContext | None = None) -> RoundTrip:
    """Retry round_trip until it succeeds or the timeout runs out.

    Raises:
        TimeoutError: No round trip succeeded in time; the message names the last error.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return round_trip(url, timeout=min(10.0, max(1.0, deadline - time.monotonic())), tls=tls)
        except pika.exceptions.ProbableAuthenticationError as error:
            raise PermissionError(f"the broker rejected the credentials: {error!r}") from error
        except (pika.exceptions.AMQPError, OSError, TimeoutError) as error:
            last_error = error
            time.sleep(0.2)
    raise TimeoutError(f"no AMQP round trip within {timeout} s; last error: {last_error!r}")


def publish_persistent(url: str, queue: str, count: int, size: int = 1024) -> list[bytes]:
    """Declare a durable queue and publish persistent messages to it with publisher confirms.

    Returns:
        The bodies published, in order; each is size bytes and starts with its number.
    """
    bodies = [f"{number:08d}".encode().ljust(size, b".") for number in range(count)]
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(queue=queue, durable=True)
        for body in bodies:
            _publish_persistent(channel, queue, body)
    return bodies


def consume_all(url: str, queue: str, delete: bool = True) -> list[bytes]:
    """Consume every message of a queue, acknowledge them and, by default, delete the queue.

    Returns:
        The bodies consumed, in queue order.
    """
    bodies = []
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        while True:
            method, _properties, body = channel.basic_get(queue=queue, auto_ack=False)
            if method is None:
                break
            bodies.append(body)
            channel.basic_ack(method.delivery_tag)
        if delete:
            channel.queue_delete(queue=queue)
    return bodies


def main(argv: list[str] | None = None) -> int:
    """Run `python -m mqbox.amqp`: wait for one AMQP round trip and print its time."""
    parser = argparse.ArgumentParser(description="Wait until an AMQP publish and consume succeeds.")
    parser.add_argument("--url-file", required=True, help="file whose first line is the AMQP URL, password included")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait in all (default: 120)")
    arguments = parser.parse_args(argv)

    url = Path(arguments.url_file).read_text(encoding="utf-8").splitlines()[0].strip()
    try:
        result = wait_for_round_trip(url, arguments.timeout)
    except (PermissionError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"AMQP round trip succeeded in {result.seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
