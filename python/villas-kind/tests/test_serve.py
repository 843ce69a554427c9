"""The protocol loop, driven through the probe kind process's stdin and stdout
as the daemon drives it: handshake, build, act, timers, tasks, failures,
managers, bad input from the daemon, stop, the end of stdin, SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from villas_kind import PROTOCOL_VERSION, SDK_VERSION
from villas_kind.testing import KindProcess

# -- handshake ---------------------------------------------------------------


def test_handshake_lists_the_kinds_and_what_they_serve(kind: KindProcess) -> None:
    answer = kind.hello()
    assert answer == {
        "reply": answer["reply"],
        "ok": True,
        "protocol": PROTOCOL_VERSION,
        "name": "probe",
        "version": "1.2.3",
        "sdk": SDK_VERSION,
        "kinds": [
            {
                "category": "simulator",
                "type": "probe",
                "schemas": {"start": {"type": "object", "properties": {"mode": {"type": "string"}}}},
                # What Probe defines, in protocol order; never reset or ping.
                "actions": ["start", "stop", "pause"],
            },
            {"category": "manager", "type": "probe", "schemas": {}, "actions": ["create", "delete"]},
        ],
    }


@pytest.mark.parametrize(
    ("protocol", "sdk", "why"),
    [
        (2, SDK_VERSION, "the daemon speaks kind protocol 2, this kind 1"),
        (1, "0.2.0", "does not work with the daemon's SDK 0.2.0"),
        (1, "1.1.0", "does not work with the daemon's SDK 1.1.0"),
    ],
)
def test_handshake_refuses_an_incompatible_daemon_and_exits_1(
    kind: KindProcess, protocol: int, sdk: str, why: str
) -> None:
    answer = kind.hello(protocol=protocol, sdk=sdk)
    assert answer["ok"] is False
    assert why in answer["error"]["message"]
    assert kind.wait() == 1
    assert why in kind.log


def test_nothing_before_the_handshake(kind: KindProcess) -> None:
    answer = kind.request("ping")
    assert answer["ok"] is False
    assert answer["error"] == {"message": "the handshake (hello) comes first", "code": 2}
    kind.handshake()
    assert kind.request("ping")["ok"]
    assert kind.hello()["error"]["message"] == "the handshake is done already"


# -- build -------------------------------------------------------------------


def test_build_then_initial_status_fields(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe", {"name": "p"})
    event = probe.next_event()
    assert event == {
        "event": "fields",
        "instance": uuid,
        "fields": {"starts": 0, "fired": [], "cancelled": [], "builds": 1},
    }


def test_build_refusals(probe: KindProcess) -> None:
    def build(**fields: object) -> dict[str, object]:
        body: dict[str, object] = {"instance": "u1", "category": "simulator", "type": "probe", "properties": {}}
        body.update(fields)
        answer = probe.request("build", **body)
        assert answer["ok"] is False
        error: dict[str, object] = answer["error"]
        return error

    assert build(properties={"refuse": True}) == {"message": "property 'refuse' is set", "code": 5, "property": "refuse"}
    crashed = build(properties={"crash": True})
    assert (crashed["code"], crashed["message"]) == (9, "ZeroDivisionError: build crashed")
    assert "build of u1 raised" in probe.wait_for_log("build of u1 raised")
    assert build(type="nothing") == {"message": "this process serves no simulator/nothing", "code": 6}
    probe.build("simulator", "probe", uuid="u1")
    assert build()["code"] == 7, "a uuid that exists already"


# -- on_start ----------------------------------------------------------------


def test_on_start_runs_after_the_build_reply_and_first_fields(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe", {"on_start": "watch"})
    assert probe.events == [], "nothing came before the build's answer"
    base = {"starts": 0, "fired": [], "cancelled": [], "builds": 1}
    assert probe.next_event() == {"event": "fields", "instance": uuid, "fields": {**base, "on_starts": 0}}
    # on_start: its fields, its transition, then its timer's fields and transition.
    assert probe.next_event() == {
        "event": "fields",
        "instance": uuid,
        "fields": {**base, "watching": True, "on_starts": 1},
    }
    assert probe.next_event() == {"event": "transition", "instance": uuid, "state": "starting"}
    assert probe.next_event()["fields"]["fired"] == ["running-watched"]
    assert probe.next_event() == {"event": "transition", "instance": uuid, "state": "running"}
    # Once per build: an action after it does not run it again.
    assert probe.act(uuid, "stop")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    assert probe.fields(uuid)["on_starts"] == 1


def test_an_action_sent_right_after_build_comes_after_on_start(probe: KindProcess) -> None:
    instance = "u-watch"
    probe.send(
        {"op": "build", "id": 50, "instance": instance, "category": "simulator", "type": "probe",
         "properties": {"on_start": "watch"}, "data_dir": None}
    )
    probe.send({"op": "act", "id": 51, "instance": instance, "state": "starting",
                "action": {"action": "start", "parameters": {"mode": "later", "after": 10}}})
    assert probe.reply(50)["ok"]
    assert probe.reply(51)["ok"]
    # on_start's transition (idle -> starting) came first, so it was allowed.
    assert probe.wait_state(instance, "starting") == ["starting"]
    assert probe.fields(instance)["on_starts"] == 1


def test_a_crash_in_on_start_fails_the_instance_and_the_process_lives(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe", {"on_start": "crash"})
    event = probe.expect(lambda e: e.get("event") == "fail", "the failure")
    assert event["instance"] == uuid
    assert event["error"]["code"] == 9
    assert event["error"]["message"] == "RuntimeError: on_start crashed"
    assert "on_start of " + uuid + " raised" in probe.wait_for_log("on_start of")
    assert probe.request("ping")["ok"]
    # The process serves on: another instance runs, and the crashed one's
    # timer (due before the other's) never fired (it would fail it again).
    other = probe.build("simulator", "probe")
    assert probe.act(other, "start", {"mode": "later", "after": 0.1})["ok"]
    probe.wait_state(other, "running")
    assert [e for e in probe.history if e.get("event") == "fail"] == [event]
    # reset rebuilds the crashed instance and does not run on_start again
    # (as the Rust SDK: on_start runs when the instance starts, not on reset).
    assert probe.act(uuid, "reset", state="resetting")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    assert probe.fields(uuid)["builds"] == 2
    assert probe.fields(uuid)["on_starts"] == 1
    assert probe.act(uuid, "start", {"mode": "now"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]


def test_a_refusal_from_on_start_fails_the_instance_with_its_error(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe", {"on_start": "refuse"})
    event = probe.expect(lambda e: e.get("event") == "fail", "the failure")
    assert event == {
        "event": "fail",
        "instance": uuid,
        "error": {"message": "nothing to watch", "code": 5, "property": "on_start"},
    }
    assert probe.act(uuid, "reset", state="resetting")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    assert probe.request("ping")["ok"]  # what a reset would have run came before its answer
    assert probe.fields(uuid)["on_starts"] == 1, "not run again by reset"
    assert [e for e in probe.history if e.get("event") == "fail"] == [event]


# -- actions -----------------------------------------------------------------


def test_start_and_stop(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "now"}) == {"reply": 3, "ok": True}
    assert probe.wait_state(uuid, "running") == ["running"]
    assert probe.act(uuid, "stop")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]


def test_an_action_it_does_not_define_or_know_is_refused(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "resume")["error"] == {
        "message": "this component does not support resume",
        "code": 6,
        "action": "resume",
    }
    assert probe.act(uuid, "jump")["error"]["code"] == 3
    assert probe.act("no-such-uuid", "start")["error"]["code"] == 8


def test_a_refused_action_fails_with_the_kinds_error(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    answer = probe.act(uuid, "start", {"mode": "refuse"})
    assert answer["error"] == {"message": "no start today", "code": 5, "parameter": "mode"}


def test_a_forbidden_transition_is_refused_and_the_state_kept(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    answer = probe.act(uuid, "start", {"mode": "bad_transition"})
    assert answer["error"] == {"message": "cannot go from starting to paused", "code": 4, "from": "starting", "to": "paused"}
    assert not [e for e in probe.history if e.get("event") == "transition"], "nothing was reported"


def test_a_crash_answers_code_9_stops_its_timers_and_reset_rebuilds(probe: KindProcess, tmp_path: Path) -> None:
    uuid = probe.build("simulator", "probe", data_dir=str(tmp_path))
    answer = probe.act(uuid, "start", {"mode": "crash"})
    assert answer["error"]["code"] == 9
    assert answer["error"]["message"] == "RuntimeError: probe crashed"
    assert "Traceback" in probe.wait_for_log("Traceback")
    # Another instance's timer, due after the crashed one's: once it fired,
    # the crashed one's would have (it would have failed the instance).
    other = probe.build("simulator", "probe")
    assert probe.act(other, "start", {"mode": "later", "after": 0.1})["ok"]
    probe.wait_state(other, "running")
    assert [e for e in probe.history if e.get("event") == "fail"] == []
    assert probe.act(uuid, "reset")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    assert probe.fields(uuid)["builds"] == 2, "reset rebuilt the instance"
    assert (tmp_path / "removed").exists(), "the crashed component released what it ran"
    assert [e for e in probe.history if e.get("event") == "fail"] == [], "silently"
    assert probe.act(uuid, "start", {"mode": "now"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]


def test_an_async_handler_with_blocking_work_is_answered_once_done(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    answer = probe.act(uuid, "start", {"mode": "async"})
    assert answer["ok"]
    # Its transition came before its answer.
    assert [e["state"] for e in probe.history if e.get("event") == "transition"] == ["running"]
    assert probe.fields(uuid)["blocking"] == 6


def test_one_stuck_instance_blocks_no_other(probe: KindProcess) -> None:
    stuck = probe.build("simulator", "probe")
    other = probe.build("simulator", "probe")
    probe.send({"op": "act", "id": 900, "instance": stuck, "state": "starting", "action": {"action": "start", "parameters": {"mode": "hang"}}})
    assert probe.act(other, "start", {"mode": "now"})["ok"]
    assert probe.request("ping")["ok"]
    with pytest.raises(TimeoutError):
        probe.reply(900, timeout=0.2)


# -- timers and tasks --------------------------------------------------------


def test_a_timer_reports_later(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "later", "after": 0.01})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    assert probe.fields(uuid)["fired"] == ["running"]


def test_a_cancelled_timer_never_fires(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "cancel"})["ok"]
    fields = probe.wait_fields(uuid, lambda fields: bool(fields["fired"]))
    assert fields["fired"] == ["live"], "the cancelled one was due first"
    assert fields["cancelled"] == [True, False], "cancelling twice: the second finds nothing"


def test_ticks_until_stop_cancels_the_timer(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "tick", "period": 0.01})["ok"]
    probe.wait_fields(uuid, lambda fields: len(fields["fired"]) >= 3)
    assert probe.act(uuid, "stop")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    assert probe.fields(uuid)["cancelled"] == [True]


def test_reset_cancels_timers(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "later", "after": 0.05, "token": "running-before"})["ok"]
    assert probe.act(uuid, "reset")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]
    # A timer scheduled after the reset, due after the cancelled one: once it
    # fired, the cancelled one would have.
    assert probe.act(uuid, "start", {"mode": "later", "after": 0.1, "token": "running-after"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    assert probe.fields(uuid)["fired"] == ["running-after"]


def test_a_failure_from_a_timer(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "fail_later"})["ok"]
    failure = probe.expect(lambda e: e.get("event") == "fail", "a failure")
    assert failure == {
        "event": "fail",
        "instance": uuid,
        "error": {"message": "the probe failed", "code": 1, "stage": "timer"},
    }
    assert probe.act(uuid, "reset")["ok"]
    assert probe.wait_state(uuid, "idle") == ["idle"]


def test_a_spawned_task_reports_to_on_task(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "task"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    assert probe.fields(uuid)["task"] == 6


def test_a_failing_task_fails_the_component(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "task_fails"})["ok"]
    failure = probe.expect(lambda e: e.get("event") == "fail", "a failure")
    assert failure["error"] == {"message": "the task failed", "code": 1, "stage": "task"}


# -- status fields -----------------------------------------------------------


def test_fields_are_sent_before_the_publication_they_belong_to(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "tick", "period": 0.01})["ok"]
    for tick in range(1, 4):
        probe.expect(lambda e: e.get("event") == "publish", "a publication")
        # Every tick changes a field: the daemon had the new one before it published.
        assert len(probe.fields(uuid)["fired"]) == tick


def test_unchanged_fields_are_not_sent_again(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "now"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    probe.events.clear()
    assert probe.act(uuid, "pause")["ok"]
    assert probe.events == [{"event": "transition", "instance": uuid, "state": "paused"}]


def test_fields_that_are_not_json_are_logged_not_sent(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "nan"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    probe.wait_for_log("status_fields of")
    assert probe.request("ping")["ok"]


def test_print_goes_to_the_log_not_the_protocol(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "print"})["ok"]
    assert probe.wait_state(uuid, "running") == ["running"]
    probe.wait_for_log("printed by the probe")
    assert probe.request("ping")["ok"], "stdout still carries only JSON"


# -- managers ----------------------------------------------------------------


def test_a_manager_creates_and_deletes_through_the_daemon(probe: KindProcess) -> None:
    boss = probe.build("manager", "probe")
    probe.send({"op": "act", "id": 100, "instance": boss, "state": "idle",
                "action": {"action": "create", "parameters": {"category": "simulator", "type": "probe"}}})
    request = probe.expect(lambda e: e.get("request") == "create", "a create request")
    assert request == {
        "request": "create",
        "id": request["id"],
        "instance": boss,
        "properties": {"category": "simulator", "type": "probe"},
    }
    probe.answer(request["id"])
    assert probe.reply(100) == {"reply": 100, "ok": True}

    probe.send({"op": "act", "id": 101, "instance": boss, "state": "idle",
                "action": {"action": "delete", "parameters": {"uuid": "c1"}}})
    request = probe.expect(lambda e: e.get("request") == "delete", "a delete request")
    assert request["uuid"] == "c1"
    probe.answer(request["id"], {"message": "not managed here", "code": 8, "uuid": "c1"})
    assert probe.reply(101)["error"] == {"message": "not managed here", "code": 8, "uuid": "c1"}


def test_only_a_manager_has_manager_operations(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    answer = probe.act(uuid, "start", {"mode": "manager"})
    assert answer["error"]["code"] == 6
    assert "only components of category manager" in answer["error"]["message"]


# -- bad input from the daemon -----------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"\xff\xfe\n",
        b"[]\n",
        b"\n",
        b'{"op":"ping","id":"x"}\n',
        b'{"reply":424242,"ok":true}\n',
        b"{" + b" " * (1 << 20) + b"}\n",
    ],
    ids=["not-json", "not-utf8", "array", "empty", "bad-id", "reply-to-nothing", "over-1MiB"],
)
def test_bad_lines_are_logged_and_ignored(probe: KindProcess, line: bytes) -> None:
    uuid = probe.build("simulator", "probe")
    probe.send_raw(line)
    probe.wait_for_log("protocol error from the daemon")
    assert probe.request("ping")["ok"]
    assert probe.act(uuid, "start", {"mode": "now"})["ok"], "instances are unharmed"


def test_bad_requests_are_answered_with_why(probe: KindProcess) -> None:
    probe.send({"op": "dance", "id": 50})
    assert probe.reply(50)["error"] == {"message": "unknown op 'dance'", "code": 2}
    probe.send({"op": "build", "id": 51, "instance": "u", "category": "simulator", "type": "probe", "properties": {}, "colour": "red"})
    assert probe.reply(51)["ok"], "an unknown field is ignored (a newer daemon may send it)"
    probe.send({"op": "act", "id": 52, "instance": "u", "action": {"action": "start"}})
    assert probe.reply(52)["error"]["message"] == "act: field 'state' is missing"
    assert probe.request("ping")["ok"]


def test_a_flood_of_bad_lines_is_logged_in_moderation(probe: KindProcess) -> None:
    probe.send_raw(b"junk\n" * 1000)
    assert probe.request("ping")["ok"]
    assert probe.log.count("protocol error from the daemon") <= 20


# -- the end -----------------------------------------------------------------


def test_stop_is_honoured_before_the_handshake(kind: KindProcess) -> None:
    assert kind.stop() == 0


def test_stop_releases_every_instance_and_exits_0(probe: KindProcess, tmp_path: Path) -> None:
    uuid = probe.build("simulator", "probe", data_dir=str(tmp_path))
    assert probe.act(uuid, "start", {"mode": "tick", "period": 0.01})["ok"]
    assert probe.stop() == 0
    assert (tmp_path / "removed").exists(), "on_remove ran"


def test_the_end_of_stdin_releases_and_exits_0(probe: KindProcess, tmp_path: Path) -> None:
    probe.build("simulator", "probe", data_dir=str(tmp_path))
    assert probe.close() == 0
    assert (tmp_path / "removed").exists()


def test_sigterm_releases_and_exits_143(probe: KindProcess, tmp_path: Path) -> None:
    probe.build("simulator", "probe", data_dir=str(tmp_path))
    probe.process.send_signal(signal.SIGTERM)
    assert probe.wait() == 128 + signal.SIGTERM
    assert (tmp_path / "removed").exists()


def test_stop_does_not_wait_for_blocking_work(probe: KindProcess) -> None:
    uuid = probe.build("simulator", "probe")
    assert probe.act(uuid, "start", {"mode": "block"})["ok"]  # sleeps 60 s in a thread
    started = time.monotonic()
    assert probe.stop(timeout=5) == 0
    assert time.monotonic() - started < 5
    probe.wait_for_log("exiting with 1 blocking call(s) still running")


def test_remove_releases_and_forgets_the_instance(probe: KindProcess, tmp_path: Path) -> None:
    uuid = probe.build("simulator", "probe", data_dir=str(tmp_path))
    assert probe.act(uuid, "start", {"mode": "tick", "period": 0.01})["ok"]
    assert probe.remove(uuid) == {"reply": 4, "ok": True}
    assert (tmp_path / "removed").exists()
    assert probe.act(uuid, "stop")["error"]["code"] == 8
    assert probe.remove(uuid)["error"]["code"] == 8
    # Nothing is sent for it once removed: its on_remove tried to fail it.
    assert probe.request("ping")["ok"]
    failures = [e for e in probe.history if e.get("event") == "fail"]
    assert failures == [], json.dumps(failures)
