"""Logs each event and the invocation's context, then returns a short summary.

Point a schedule or a new trigger at it to see exactly what that source sends. The log
lines go to the function's log stream, tagged with the request id.
"""

import json
import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def describe_source(event):
    """A best guess at what sent the event, from the shape of its JSON."""
    if not isinstance(event, dict):
        return "direct invocation"
    if "detail-type" in event:
        return f"EventBridge: {event.get('source', 'unknown')} / {event['detail-type']}"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        source = first.get("eventSource") or first.get("EventSource") or "unknown"
        return f"{source} ({len(records)} record{'s' if len(records) != 1 else ''})"
    if "httpMethod" in event or "routeKey" in event:
        return "API Gateway"
    return "direct invocation"


def lambda_handler(event, context):
    logger.info("Event: %s", json.dumps(event, sort_keys=True))
    logger.info(
        "Context: request id %s, function %s version %s, memory limit %s MB, %d ms remaining",
        context.aws_request_id,
        context.function_name,
        context.function_version,
        context.memory_limit_in_mb,
        context.get_remaining_time_in_millis(),
    )
    logger.info("Log stream: %s %s", context.log_group_name, context.log_stream_name)

    summary = {
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "functionVersion": context.function_version,
        "source": describe_source(event),
        "eventKeys": sorted(event) if isinstance(event, dict) else [],
        "eventSize": len(json.dumps(event)),
    }
    if isinstance(event, dict) and "time" in event:
        summary["eventTime"] = event["time"]
    logger.info("Summary: %s", json.dumps(summary))
    return summary
