"""ResultUrlFunction: Plum's Result URL (POST /plum/status?key=...&ref=...).

Its wiring is ``plumsms.bootstrap``'s; its handler, ``plumsms.entrypoints``'.
"""

from plumsms import coldstart

with coldstart.wiring():  # the imports and the wiring, with no collection until built
    from plumsms import bootstrap

    function = bootstrap.result_url_function()

lambda_handler = function.handler
