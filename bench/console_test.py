"""The console's Test button, over HTTP: sign in, then POST the event and read the result."""

from __future__ import annotations

import time

import requests

from bench.scenario import PAYLOAD, WARM_UP
from functions.models import Function


def signed_in_session(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    response.raise_for_status()
    if "sessionid" not in session.cookies:
        raise RuntimeError("could not sign in to the console")
    return session


def measure(port: int, function: Function, username: str, password: str, n: int) -> list[float]:
    base = f"http://127.0.0.1:{port}"
    session = signed_in_session(base, username, password)
    url = f"{base}/invocations/functions/{function.pk}/test/"
    headers = {
        "X-CSRFToken": session.cookies["csrftoken"],
        "HX-Request": "true",
        "Referer": f"{base}/functions/{function.pk}/?tab=test",
    }
    samples = []
    for i in range(n + WARM_UP):
        start = time.perf_counter()
        response = session.post(url, data={"payload": PAYLOAD}, headers=headers, timeout=30)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200 or "Execution result: succeeded" not in response.text:
            raise RuntimeError(f"Test failed: HTTP {response.status_code}: {response.text[:500]}")
        if i >= WARM_UP:
            samples.append(elapsed)
    return samples
