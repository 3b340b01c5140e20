"""Discord notifications: the spec's three channels (errors, performance, business).

    from sage.notify import Notifier, Alert, Channel
    notifier.send(Channel.ERRORS, Alert(title="...", message="...", fields={...}))

The running notifier is `runtime.services["notifier"]`.
"""

from sage.notify.channels import Alert, Channel
from sage.notify.client import Notifier

__all__ = ["Alert", "Channel", "Notifier"]
