"""A stand-in case workflow that only records ``documents_received`` signals.

It lets the upload test see the real signal (name, document ids, actor) without depending on
the full onboarding workflow's stage logic.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.commands import DocumentsReceived


@workflow.defn(name="DocumentsSignalRecorder")
class DocumentsSignalRecorder:
    def __init__(self) -> None:
        self._received: list[DocumentsReceived] = []
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.signal(name="documents_received")
    def documents_received(self, cmd: DocumentsReceived) -> None:
        self._received.append(cmd)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def received(self) -> list[DocumentsReceived]:
        return self._received
