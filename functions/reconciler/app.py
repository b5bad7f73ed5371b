"""ReconcilerFunction: on a schedule, asks Plum about messages stuck in queued or sent.

Its wiring is ``plumsms.bootstrap``'s; its handler, ``plumsms.entrypoints``'.
"""

from plumsms import coldstart

with coldstart.wiring():  # the imports and the wiring, with no collection until built
    from plumsms import bootstrap

    function = bootstrap.reconciler_function()

lambda_handler = function.handler
