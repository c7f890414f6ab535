"""A small real Python program that crashes (the crash assembler's oracle, issue 11).

    SENTRY_OUT=event.jsonl python3 crash.py SCENARIO

The official SDK (python3-sentry-sdk) is initialised with a function transport that
appends each event's JSON to $SENTRY_OUT (no network). The crash is left uncaught, so
the SDK's excepthook integration captures it and then Python's own excepthook prints the
traceback on stderr exactly as a dyno would print it. The "logged" scenario instead
logs it the way a web app's error logger does (logging.exception), which the SDK's
logging integration captures.
"""
import json
import logging
import os
import sys

import sentry_sdk

# Where Heroku's Python buildpack installs packages (on sys.path there by itself).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".heroku", "python", "lib", "python3.11", "site-packages"))
from shop import orders  # noqa: E402


def write_event(event):
    with open(os.environ["SENTRY_OUT"], "a", encoding="utf-8") as f:
        f.write(json.dumps(event, default=repr) + "\n")


sentry_sdk.init(
    dsn="https://public@sentry.invalid/1",
    transport=write_event,
    # sentry-sdk 1.9 marks every frame in_app unless told otherwise: an app using it
    # names the library packages it calls into, as this one does for the stdlib's json
    # and the installed package pricing.
    in_app_exclude=["json", "pricing"],
)


def handle(scenario):
    if scenario == "nested":
        return orders.total(["apple", "kiwi"])
    if scenario == "raise_from":
        return orders.checkout(["pear", "plum"])
    if scenario == "implicit":
        return orders.refund("o-9")
    if scenario == "stdlib":
        return orders.load_cart("{'items': 1}")
    if scenario == "site_packages":
        return orders.quote("durian")
    if scenario == "multiline":
        return orders.validate({"sku": "", "qty": -1})
    if scenario == "group":
        return orders.check_all(["kiwi", "apple", "lime"])
    if scenario == "logged":
        try:
            orders.checkout(["fig"])
        except orders.CheckoutError:
            logging.getLogger("shop.web").exception("request failed: POST /checkout")
        # the app goes on serving (a warning: a breadcrumb for the SDK, not an event)
        logging.getLogger("shop.web").warning("slow request: GET /health took 1200ms")
        return None
    if scenario == "recursion":
        return orders.category_path({"fruit": "food", "food": "fruit"}, "fruit")
    if scenario == "syntax":
        import plugins.broken  # noqa: F401 (the import is what fails)
        return None
    if scenario == "burst":
        # two failing requests one right after the other: two crashes, two events
        log = logging.getLogger("shop.web")
        for path, call in (("/checkout", lambda: orders.checkout(["fig"])),
                           ("/refund/o-5", lambda: orders.refund("o-5"))):
            try:
                call()
            except Exception:  # noqa: BLE001 (a web app's catch-all)
                log.exception(f"request failed: POST {path}")
                log.warning("slow request: GET /health took 1200ms")
        return None
    if scenario == "gunicorn":
        # gunicorn's error log format (its glogging) for an error in a request handler
        log = logging.getLogger("gunicorn.error")
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("[%(asctime)s +0000] [%(process)d] [%(levelname)s] "
                                         "%(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(h)
        log.propagate = False
        try:
            orders.refund("o-7")
        except ZeroDivisionError:
            log.exception("Error handling request /refund/o-7")
        log.warning("Worker with pid 13 was terminated due to signal 9")
        return None
    raise SystemExit(f"unknown scenario {scenario}")


def main():
    logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
    handle(sys.argv[1])


if __name__ == "__main__":
    main()
