"""One module per element kind. Each has ``run(case, spec, element)``: start the element, then
wait (through ``CaseRuntime.wait_until``) until it is finished or the case is interrupted.
Commands that act on an element live next to it (validate + apply)."""
