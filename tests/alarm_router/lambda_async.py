"""Lambda's asynchronous invocation, as SNS uses it, reduced to what the alarm path relies on.

SNS invokes the router asynchronously. Lambda runs the handler; when it raises, Lambda retries
the event (`MaximumRetryAttempts`, 2 in the stack: alarm_delivery.ROUTER_RETRIES), and when
every attempt failed it sends an invocation record to the function's on-failure destination
(the dead-letter queue). The record's shape is Lambda's ("Capturing records of Lambda
asynchronous invocations", AWS Lambda Developer Guide): `requestPayload` is the original event,
`responsePayload` the last error. Here the destination is a real SQS queue on moto.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def invoke_async(
    handler: Callable[[Any, Any], Any],
    event: dict[str, Any],
    context: Any,
    *,
    retries: int,
    sqs: Any,
    queue_url: str,
    function_arn: str,
) -> Any:
    """Run the handler up to 1 + retries times; a final failure goes to the on-failure queue."""
    request_id = str(uuid.uuid4())
    failure: BaseException | None = None
    for _ in range(1 + retries):
        try:
            return handler(event, context)
        except Exception as exc:
            failure = exc
    assert failure is not None
    record = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 1 + retries,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(failure),
            "errorType": type(failure).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_exception(failure)[-3:],
        },
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return None
