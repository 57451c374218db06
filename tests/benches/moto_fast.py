"""moto_server with its SQS hot paths indexed, for the drain bench.

Usage: python3 moto_fast.py [moto_server's arguments, e.g. -H 127.0.0.1 -p 5000]

Stock moto (5.2.x) spends its time on whole-queue scans that have nothing
to do with SQS: every ReceiveMessage builds the list of all visible messages
and, per message it returns, reads the queue's attributes three times to
get the retention period (each read counts visible, in-flight and delayed
messages: three more scans); every receipt handle in a DeleteMessageBatch
or ChangeMessageVisibility is looked for with a scan (two for a delete); and
every message SNS delivers reads the attributes again. At a depth of 2,000
that drains at 10 to 40 messages/s, which says nothing about a consumer.

This launcher replaces those methods with versions that give the same
answers without the scans, then runs moto's own server:

- ReceiveMessage walks the queue in order and stops when it has enough,
  instead of listing every visible message first; the retention period is
  read from the queue itself.
- Receipt handles are indexed per queue (every handle a message got from a
  receive, as moto accepts old handles too). A handle the index has not
  seen (a message moved into a dead-letter queue carries handles from its
  source queue) falls back to moto's scan, so every answer stays moto's.
- A delete rebuilds the message list as moto does (readers never see it
  change under them), under the queue's own lock, so that a message sent
  at the same moment is not lost.
- SendMessage decides content-based deduplication from the queue's
  settings instead of computing all its attributes.

Receives, deletes and visibility changes of one queue take the queue's lock
(moto's own condition), so each runs as stock moto would run it alone.

It also counts, per queue, the calls the drain bench wants to compare
(receives and the messages they returned, delete batches and their
entries, visibility batches). On SIGUSR1 it writes them as JSON to the file
named by MOTO_FAST_STATS: {"seq": n, "queues": {name: {counter: value}}}.

The copies follow moto 5.2.1; another minor version of moto is refused
(run the stock moto_server instead).
"""

import json
import os
import signal
import sys
import threading
from collections import defaultdict
from copy import deepcopy

import moto

SUPPORTED = "5.2."
if not moto.__version__.startswith(SUPPORTED):
    sys.exit(
        f"moto_fast.py patches moto {SUPPORTED}x, found {moto.__version__}; "
        "use the stock moto_server (DRAIN_FAST_MOTO=0)"
    )

from moto.core.utils import unix_time  # noqa: E402
from moto.sqs import models  # noqa: E402
from moto.sqs.exceptions import ReceiptHandleIsInvalid  # noqa: E402
from moto.sqs.models import Message, Queue, SQSBackend  # noqa: E402

# ----- counters ---------------------------------------------------------------

_counts = defaultdict(lambda: defaultdict(int))
_counts_lock = threading.Lock()
_seq = 0


def _count(queue_name, **deltas):
    with _counts_lock:
        c = _counts[queue_name]
        for k, v in deltas.items():
            c[k] += v


def _dump_counts(_signum=None, _frame=None):
    global _seq
    path = os.environ.get("MOTO_FAST_STATS")
    if not path:
        return
    with _counts_lock:
        _seq += 1
        data = {"seq": _seq, "queues": {q: dict(c) for q, c in _counts.items()}}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


# ----- the receipt handle index -------------------------------------------------


def _index(queue):
    """Receipt handle -> message, for the messages in `queue._messages`."""
    idx = queue.__dict__.get("_fast_handles")
    if idx is None:
        idx = queue.__dict__.setdefault("_fast_handles", {})
    return idx


def _forget(queue, message):
    idx = _index(queue)
    for handle in message.all_receipt_handles:
        idx.pop(handle, None)


def _find(queue, receipt_handle):
    """The message of `queue` that ever had `receipt_handle`, or None.
    Called under the queue's lock."""
    idx = _index(queue)
    message = idx.get(receipt_handle)
    if message is not None:
        return message
    # Not from a receive of this queue (a message moved here from another
    # queue, or no such handle): moto's scan.
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            for handle in message.all_receipt_handles:
                idx[handle] = message
            return message
    return None


def _visible_in_order(queue):
    """The visible, undelayed messages of `queue` in order, judged as the
    walk reaches them (moto lists them all first)."""
    for message in list(queue._messages):
        if message.visible and not message.delayed:
            yield message


# ----- patched methods (moto 5.2.1's, without the scans) -------------------------


def queue_delete_message(self, receipt_handle):
    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            # Already deleted - gracefully handle deleting it again
            return
        message = _find(self, receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        self._messages = [m for m in self._messages if m is not message]
        _forget(self, message)


def receive_message(
    self,
    queue_name,
    count,
    wait_seconds_timeout,
    visibility_timeout,
    message_attribute_names=None,
):
    if message_attribute_names is None:
        message_attribute_names = []
    queue = self.get_queue(queue_name)
    result = []
    previous_result_count = len(result)

    polling_end = unix_time() + wait_seconds_timeout
    currently_pending_groups = deepcopy(queue.pending_message_groups)

    while True:
        if result or (wait_seconds_timeout and unix_time() > polling_end):
            break

        messages_to_dlq = []
        with queue._messages_lock:
            for message in _visible_in_order(queue):
                if message in queue.pending_messages:
                    # The message is pending but is visible again, so the
                    # consumer must have timed out.
                    queue.pending_messages.remove(message)
                    currently_pending_groups = deepcopy(queue.pending_message_groups)

                if message.group_id and queue.fifo_queue:
                    if message.group_id in currently_pending_groups:
                        continue

                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count
                    >= queue.redrive_policy["maxReceiveCount"]
                ):
                    messages_to_dlq.append(message)
                    continue

                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                _index(queue)[message.receipt_handle] = message
                message_copy = deepcopy(message)
                models._filter_message_attributes(message_copy, message_attribute_names)
                if not self.is_message_valid_based_on_retention_period(
                    queue_name, message
                ):
                    break
                result.append(message_copy)
                if len(result) >= count:
                    break

            for message in messages_to_dlq:
                queue._messages.remove(message)
                _forget(queue, message)
                queue.dead_letter_queue.add_message(message)

        if previous_result_count == len(result):
            if wait_seconds_timeout == 0:
                break
            queue.wait_for_messages(1)
            continue

        previous_result_count = len(result)

    _count(queue_name, receives=1, received=len(result), empty=int(not result))
    return result


def is_message_valid_based_on_retention_period(self, queue_name, message):
    # moto reads all the queue's attributes (three scans) for this one.
    retention_period = self.get_queue(queue_name).message_retention_period
    retain_until = retention_period + message.sent_timestamp / 1000
    return retain_until > unix_time()


def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        message = _find(queue, receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid
        visibility_timeout_msec = int(visibility_timeout) * 1000
        given_visibility_timeout = models.unix_time_millis() + visibility_timeout_msec
        if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:
            raise models.InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        if message.visible and message in queue.pending_messages:
            queue.pending_messages.remove(message)


def _content_based_deduplication(queue):
    """What `queue.attributes.get("ContentBasedDeduplication") == "true"`
    answers, without the three scans of `attributes`."""
    if not queue.fifo_queue:
        return False
    value = queue.content_based_deduplication
    if isinstance(value, bool):
        value = str(value).lower()
    return value == "true"


def send_message(
    self,
    queue_name,
    message_body,
    message_attributes=None,
    delay_seconds=None,
    deduplication_id=None,
    group_id=None,
    system_attributes=None,
    validate_group_id=True,
):
    queue = self.get_queue(queue_name)

    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )

    if delay_seconds is not None:
        delay_seconds = int(delay_seconds)
    else:
        delay_seconds = queue.delay_seconds

    message_id = str(models.random.uuid4())
    message = Message(message_id, message_body, system_attributes)

    if _content_based_deduplication(queue):
        sha256 = models.hashlib.sha256()
        sha256.update(message_body.encode("utf-8"))
        message.deduplication_id = sha256.hexdigest()

    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(
            models.random.choice(models.string.digits) for _ in range(20)
        )

    if group_id is not None:
        message.group_id = group_id

    if message_attributes:
        message.message_attributes = message_attributes

    if delay_seconds > models.MAXIMUM_MESSAGE_DELAY:
        msg = (
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
        raise models.InvalidParameterValue(msg)

    message.mark_sent(delay_seconds=delay_seconds)

    queue.add_message(message)
    _count(queue_name, sent=1)

    return message


def purge_queue(self, queue_name):
    queue = self.get_queue(queue_name)
    with queue._messages_lock:
        queue._messages = []
        _index(queue).clear()


_stock_delete_message_batch = SQSBackend.delete_message_batch
_stock_change_message_visibility_batch = SQSBackend.change_message_visibility_batch


def delete_message_batch(self, queue_name, receipts):
    success, errors = _stock_delete_message_batch(self, queue_name, receipts)
    _count(queue_name, delete_batches=1, deleted=len(success), delete_errors=len(errors))
    return success, errors


def change_message_visibility_batch(self, queue_name, entries):
    success, errors = _stock_change_message_visibility_batch(self, queue_name, entries)
    _count(queue_name, visibility_batches=1, visibility_entries=len(entries))
    return success, errors


def install():
    Queue.delete_message = queue_delete_message
    SQSBackend.receive_message = receive_message
    SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )
    SQSBackend.change_message_visibility = change_message_visibility
    SQSBackend.send_message = send_message
    SQSBackend.purge_queue = purge_queue
    SQSBackend.delete_message_batch = delete_message_batch
    SQSBackend.change_message_visibility_batch = change_message_visibility_batch


if __name__ == "__main__":
    install()
    signal.signal(signal.SIGUSR1, _dump_counts)
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
