"""ScheduledSendFunction: sends due messages (EventBridge every minute, and send-now).

Its wiring is ``plumsms.bootstrap``'s; its handler, ``plumsms.entrypoints``'.
"""

from plumsms import coldstart

with coldstart.wiring():  # the imports and the wiring, with no collection until built
    from plumsms import bootstrap

    function = bootstrap.scheduled_send_function()

lambda_handler = function.handler
