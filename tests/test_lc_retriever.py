"""`Assistant.as_retriever`: the index as a langchain retriever, inside a langchain runnable."""

from __future__ import annotations

from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

QUESTION = "How can I ensure the reproducibility of my deep learning project?"


def test_the_index_plugs_into_a_langchain_chain(indexed):
    retriever = indexed.as_retriever(k=3)
    assert isinstance(retriever, BaseRetriever)

    def prompt(inputs: dict) -> str:
        context = "\n".join(f"[{d.metadata['unit_id']}] {d.page_content}" for d in inputs["docs"])
        return f"Context:\n{context}\n\nQuestion: {inputs['question']}"

    chain = {"docs": retriever, "question": RunnablePassthrough()} | RunnableLambda(prompt)
    text = chain.invoke(QUESTION)
    docs = retriever.invoke(QUESTION)
    assert len(docs) == 3 and text.endswith(f"Question: {QUESTION}")
    hits = indexed.search(QUESTION, k=3)
    assert [d.metadata["unit_id"] for d in docs] == [h.unit_id for h in hits]  # the same hybrid search
    top = docs[0]
    assert top.metadata["question"] == QUESTION and top.page_content == hits[0].text
    assert top.metadata["source"].endswith(".md") and top.id == top.metadata["unit_id"]
    assert top.metadata["score"] >= docs[-1].metadata["score"] and 0 < top.metadata["relevance"] <= 1
    assert f"[{top.metadata['unit_id']}]" in text
    # batched, as chains run it
    many = retriever.batch([QUESTION, "What is deep learning?"])
    assert [len(d) for d in many] == [3, 3] and many[1][0].metadata["question"] != QUESTION
