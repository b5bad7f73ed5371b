"""InboundSmsFunction: Plum's Application URL (POST /plum/inbound?key=...).

Its wiring is ``plumsms.bootstrap``'s; its handler, ``plumsms.entrypoints``'.
"""

from plumsms import coldstart

with coldstart.wiring():  # the imports and the wiring, with no collection until built
    from plumsms import bootstrap

    function = bootstrap.inbound_sms_function(__file__)

lambda_handler = function.handler
