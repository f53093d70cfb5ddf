"""E-mail and the sweeps travel on separate queues, each bound to its own exchange and routing key."""

from __future__ import annotations

import pytest

from carepath.celery import app

ROUTED = {
    "carepath.send_notification_email": "email",
    "carepath.sweep_email": "email",
    "carepath.sweep_materialize": "sweeps",
    "carepath.sweep_expire": "sweeps",
    "carepath.sweep_escalate": "sweeps",
    "carepath.sweep_remind": "sweeps",
}


@pytest.mark.parametrize(("task", "queue"), sorted(ROUTED.items()))
def test_each_task_is_published_with_its_own_queues_exchange_and_routing_key(task: str, queue: str) -> None:
    route = app.amqp.router.route({}, task)["queue"]
    assert route.name == queue
    assert (route.exchange.name, route.routing_key) == (queue, queue)


def test_no_two_queues_share_a_binding_so_a_message_reaches_exactly_one_queue() -> None:
    bindings = [(q.exchange.name, q.routing_key) for q in app.amqp.queues.values()]
    assert sorted(app.amqp.queues) == ["email", "sweeps"]
    assert len(set(bindings)) == len(bindings)
