"""MessagesApiFunction: the authenticated management API (send, schedule, log, export, web page).

Its wiring is ``plumsms.bootstrap``'s; its handler, ``plumsms.entrypoints``'.
"""

from plumsms import coldstart

with coldstart.wiring():  # the imports and the wiring, with no collection until built
    from plumsms import bootstrap

    function = bootstrap.messages_api_function()

lambda_handler = function.handler
