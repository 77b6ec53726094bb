"""Collects the call-flow facts of a module (flow_model.CallFlow) once its mask uses and attention calls are
known: one pass over those, plus a text check (`_adjust`) before any wider search."""

from __future__ import annotations

import ast

from ..core.apis import BLOCK_MASK_CONSTRUCTORS, FLEX_ATTENTION, FLEX_ATTENTION_PARAMETERS, PARTIAL, ApiTable, MaskApi
from .attention_results import LseRequests
from .block_mask_arguments import BlockMaskArguments
from .block_mask_flow import BlockMaskFlow
from .block_mask_reach import BlockMaskReaches
from .call_sites import CallSiteFacts
from .callees import Callees
from .flow_model import CallFlow
from .forwarded_calls import forwarded_arguments, forwarders
from .kernel_options import KernelOptionKeys
from .model import CallArgument, ModuleFacts
from .resolution import Resolver

_CREATE_BLOCK_MASK = "torch.nn.attention.flex_attention.create_block_mask"
_FLEX = MaskApi(FLEX_ATTENTION, 3, "score_mod", role="score_mod", parameters=FLEX_ATTENTION_PARAMETERS)


class CallFlowFacts:
    def __init__(self, resolver: Resolver, callees: Callees, call_sites: CallSiteFacts, apis: ApiTable) -> None:
        self.resolver = resolver
        self.callees = callees
        self.call_sites = call_sites
        self.flex = apis.get(FLEX_ATTENTION) or _FLEX

    def collect(self, facts: ModuleFacts) -> CallFlow:
        flow = CallFlow()
        builders = [
            u for u in facts.uses if u.api in BLOCK_MASK_CONSTRUCTORS and u.call_node is not None and u.arguments
        ]
        attention: list[tuple[ast.Call, dict[str, CallArgument]]] = [
            (c.call_node, self.call_sites.bind_arguments(c.call_node, self.flex))
            for c in facts.attention_calls
            if c.call_node is not None
        ]
        masks = BlockMaskFlow(self.resolver, self.callees, self.call_sites, builders)
        reaches = BlockMaskReaches(self.resolver, self.callees, masks)
        for use in builders:  # where a BlockMask goes: asked only where ESP007 or ESP009 would need it
            if reaches.asked(use):
                use.reach = reaches.reach(use, builders)
        flow.adjusted = masks.adjusted()  # looks further only when the text spells `_adjust`
        if not builders and not attention and "kernel_options" not in self.resolver.text:
            return flow
        flow.sliced = masks.sliced(
            [(call, arguments["block_mask"].node) for call, arguments in attention if "block_mask" in arguments]
        )
        flow.stored = masks.stored()
        keys = KernelOptionKeys(self.resolver)
        lse = LseRequests(self.resolver)
        for call, arguments in attention:
            options = arguments.get("kernel_options")
            found = keys.of(options.node) if options is not None else None
            if found is not None:
                flow.kernel_options.append(found)
            request = lse.of(call, arguments)
            if request is not None:
                flow.lse_requests.append(request)
        for function in forwarders(self.resolver, [call for call, _ in attention]):
            masks.visit_defs_mentioning(function.name)  # callers the relevance filter skipped
            for call, forwarded in forwarded_arguments(self.resolver, function):
                options = forwarded.get("kernel_options")
                found = keys.of(options.node) if options is not None else None
                if found is not None:
                    flow.kernel_options.append(found)
                request = lse.of(call, forwarded, via=function.name)
                if request is not None:
                    flow.lse_requests.append(request)
        for bound in self._partial_kernel_options():
            found = keys.of(bound)
            if found is not None:
                flow.kernel_options.append(found)
        sizes = BlockMaskArguments(self.resolver, self.callees)
        for use in builders:
            if use.api != _CREATE_BLOCK_MASK or use.via_helper is not None:
                continue
            heads = sizes.heads_from_kv(use, attention)
            if heads is not None:
                flow.heads_from_kv.append(heads)
            flow.builds.append(sizes.build(use))
        return flow

    def _partial_kernel_options(self) -> list[ast.expr]:
        """`kernel_options=` bound by `functools.partial(flex_attention, ...)` (often then compiled)."""
        if "kernel_options" not in self.resolver.text:
            return []
        found: list[ast.expr] = []
        for call in self.resolver.scopes.calls:
            keyword = next((k for k in call.keywords if k.arg == "kernel_options"), None)
            if keyword is None or not call.args or PARTIAL not in self.resolver.qualified_names(call.func):
                continue
            if any(r.api.qualified_name == FLEX_ATTENTION for r in self.callees.resolve_callable(call.args[0], set())):
                found.append(keyword.value)
        return found
