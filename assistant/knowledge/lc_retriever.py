"""The index as a langchain `BaseRetriever`, to plug into any langchain chain (`Assistant.as_retriever`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from assistant.knowledge.retrieval import SearchResult


def unit_document(hit: SearchResult) -> Document:
    """One Document per Q&A unit: its whole answer as the content, the rest as metadata."""
    return Document(
        id=hit.unit_id,
        page_content=hit.text,
        metadata={
            "source": hit.source,
            "doc_title": hit.doc_title,
            "question": hit.title,
            "unit_id": hit.unit_id,
            "passage": hit.passage,
            "score": hit.score,
            "relevance": hit.relevance,
            "vector_score": hit.vector_score,
            "bm25_score": hit.bm25_score,
        },
    )


class IndexRetriever(BaseRetriever):
    """The hybrid search (vectors and BM25, fused), k units per query, best first."""

    search: Callable[[str, int], list[SearchResult]]
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [unit_document(hit) for hit in self.search(query, int(kwargs.get("k", self.k)))]
