"""Retrieval: a retriever over a document store, and the chain that answers from what it
finds, sending the sources before the first token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from tailwinds import tracing
from tailwinds.engine.context import RunContext
from tailwinds.engine.events import Event, SourceDocumentsEvent
from tailwinds.engine.registry import Node, NodeInputs, Port, register_node
from tailwinds.messages import ChatMessage, ToolCall, Usage
from tailwinds.nodes.chains import ChainNode, history_as_text
from tailwinds.nodes.models import build_messages

QA_SYSTEM = (
    "Answer the question from the context below. Cite the passages you use as [1], [2] … "
    "If the context does not hold the answer, say that you do not know.\n\nContext:\n{context}"
)
CONDENSE = (
    "Given the conversation below and a follow-up question, rewrite the follow-up as a "
    "standalone question. Answer with the question only.\n\nConversation:\n{history}\n\n"
    "Follow-up: {question}\nStandalone question:"
)


@register_node
class Retriever(Node):
    type_name: ClassVar[str] = "retriever"
    category: ClassVar[str] = "retriever"
    label: ClassVar[str] = "Document store retriever"

    class Inputs(NodeInputs):
        document_store_id: str = Field(min_length=1)
        top_k: int = Field(4, ge=1, le=100)
        search_mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
        score_threshold: float | None = Field(None, ge=-1, le=1)
        # only chunks whose metadata matches: {"source": "handbook.md"}, {"lang": ["en", "fr"]}
        metadata_filter: dict[str, Any] | None = None

    inputs: Inputs

    async def retrieve(self, ctx: RunContext, query: str) -> list[dict[str, Any]]:
        i = self.inputs
        found = ctx.resources.documents.search(
            i.document_store_id, query, i.top_k, i.search_mode, i.score_threshold, i.metadata_filter
        )
        return await tracing.traced_retrieval(
            ctx, i.document_store_id, i.search_mode, i.top_k, query, found
        )


def context_text(documents: list[dict[str, Any]]) -> str:
    return "\n\n".join(
        f"[{n}] ({doc['metadata'].get('source', '')}) {doc['pageContent']}"
        for n, doc in enumerate(documents, 1)
    )


@register_node
class ConversationalRetrievalQAChain(ChainNode):
    """Condenses a follow-up with the history into a standalone question, retrieves,
    sends `sourceDocuments`, then streams an answer grounded in them."""

    type_name: ClassVar[str] = "conversationalRetrievalQAChain"
    label: ClassVar[str] = "Conversational retrieval QA chain"
    ports: ClassVar[dict[str, Port]] = {
        "model": Port("chatModel", required=True),
        "retriever": Port("retriever", required=True),
        "memory": Port("memory"),
    }

    class Inputs(NodeInputs):
        system_message: str = Field(QA_SYSTEM, description="must contain {context}")
        condense_question: bool = True

    inputs: Inputs

    @property
    def retriever(self) -> Retriever:
        return self.links["retriever"]

    async def answer(self, ctx: RunContext) -> AsyncIterator[str | Usage | ToolCall | Event]:
        turn = ctx.turn
        history = self.memory.window(turn.history) if self.memory else []
        query = turn.question
        if history and self.inputs.condense_question:
            query = await self._condense(ctx, history) or query
        documents = await self.retriever.retrieve(ctx, query)
        yield SourceDocumentsEvent(documents)
        system = self.inputs.system_message.replace("{context}", context_text(documents))
        messages = build_messages(system, history, turn.question)
        async for piece in self.model.stream_chat(ctx, messages):
            yield piece

    async def _condense(self, ctx: RunContext, history: list[ChatMessage]) -> str:
        prompt = CONDENSE.format(history=history_as_text(history), question=ctx.turn.question)
        parts = [
            piece
            async for piece in self.model.stream_chat(ctx, [ChatMessage("user", prompt)])
            if type(piece) is str
        ]
        return "".join(parts).strip()
