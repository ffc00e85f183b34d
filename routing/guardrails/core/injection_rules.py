"""The prompt-injection rule set. Versioned: change RULESET_VERSION with every edit, and re-measure
(tests/guardrails/test_injection_set.py prints precision and recall; docs/benchmarks.md keeps them).

Rules match normalised text (routing/guardrails/core/normalise.py: NFKC, casefolded, invisible
characters removed, spaced letters joined). A weight is how sure one match alone makes us; the
detector combines the weights of the rules that match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULESET_VERSION = "2026.11.1"

OVERRIDE = "instruction_override"
ROLE = "role_hijack"
EXTRACTION = "system_prompt_extraction"
EXFILTRATION = "exfiltration"
DELIMITER = "delimiter_injection"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    weight: float
    regex: re.Pattern[str]
    # The rule's regex only runs when one of these words (or substrings) is in the text.
    words: frozenset[str]
    substrings: tuple[str, ...]


_PREVIOUS = r"(?:previous|prior|preceding|above|earlier|former|original|initial|system|developer|all|any|your|the|these|those|my)"
_INSTRUCTIONS = r"(?:instructions?|directions|prompts?|directives?|rules|guidelines|guardrails|constraints|context|commands?|orders|programming|restrictions|(?:content|safety|usage) polic(?:y|ies))"

_RULES: list[tuple[str, str, float, str]] = [
    # --- instruction override
    (
        "override.ignore_previous",
        OVERRIDE,
        0.8,
        rf"\b(?:ignore|disregard|forget|skip|override|bypass|drop|discard|abandon|neglect)\b[^.\n]{{0,30}}?\b{_PREVIOUS}\b[^.\n]{{0,30}}?\b{_INSTRUCTIONS}\b",
    ),
    (
        "override.new_instructions",
        OVERRIDE,
        0.5,
        r"\b(?:new|updated|real|actual|true|revised)\s+(?:instructions?|directives?|system\s+prompt|rules)\s*(?::|are\b|follow\b)",
    ),
    (
        "override.from_now_on",
        OVERRIDE,
        0.35,
        r"\b(?:from now on|starting now|henceforth|for the rest of this conversation)\b[^.\n]{0,60}\b(?:you (?:will|must|are|shall)|ignore|respond|answer|do not|don't|never|always)\b",
    ),
    (
        "override.do_not_follow",
        OVERRIDE,
        0.6,
        rf"\b(?:do not|don't|stop|no longer|never)\s+(?:follow(?:ing)?|obey(?:ing)?|compl(?:y|ying) with|adher(?:e|ing) to|listen(?:ing)? to)\b[^.\n]{{0,30}}\b{_INSTRUCTIONS}\b",
    ),
    (
        "override.instead",
        OVERRIDE,
        0.45,
        r"\b(?:instead|rather than)\b[^.\n]{0,50}\b(?:do|follow|obey|execute)\b[^.\n]{0,20}\b(?:the following|these|my)\b[^.\n]{0,10}\b(?:instructions?|commands?|orders)\b",
    ),
    (
        "override.no_restrictions",
        OVERRIDE,
        0.55,
        r"\b(?:without|with no|free of|free from|no)\s+(?:any\s+)?(?:restrictions|filters|limitations|censorship|guardrails|safety (?:rules|guidelines)|content polic(?:y|ies)|ethical (?:guidelines|constraints))\b",
    ),
    (
        "override.priority",
        OVERRIDE,
        0.5,
        r"\b(?:this|these|the following)\s+(?:instructions?|message|prompt)\s+(?:takes?|has|have)\s+(?:priority|precedence)\b|\b(?:highest|top) priority (?:instruction|override)\b",
    ),
    # --- role hijack
    ("role.you_are_now", ROLE, 0.45, r"\byou are now\b"),
    ("role.no_longer", ROLE, 0.55, r"\byou are no longer\b"),
    (
        "role.jailbreak_persona",
        ROLE,
        0.8,
        r"\b(?:you are|you're|act as|pretend to be|become|roleplay as|you will be)\s+(?:now\s+)?(?:dan|stan|dude|aim|an? (?:unfiltered|uncensored|unrestricted|evil|jailbroken) (?:ai|model|assistant|chatbot))\b|\b(?:you are|you're) (?:now )?jailbroken\b",
    ),
    (
        "role.jailbreak_terms",
        ROLE,
        0.3,
        r"\b(?:do anything now|developer mode|god mode|jailbr(?:oken|eak)|unfiltered (?:mode|ai|assistant)|evil (?:mode|assistant|confidant)|dude mode|aim mode)\b",
    ),
    (
        "role.pretend_unrestricted",
        ROLE,
        0.6,
        r"\b(?:pretend|act|behave|roleplay|role-play|imagine)\b[^.\n]{0,40}\b(?:no|without|free of|unbound by|not bound by)\b[^.\n]{0,20}\b(?:rules|restrictions|limits|filters|guidelines|ethics|policies|morals)\b",
    ),
    (
        "role.enable_mode",
        ROLE,
        0.55,
        r"\b(?:enable|activate|enter|switch to|turn on)\s+(?:the\s+)?(?:developer|debug|admin|maintenance|sudo|root|god|unrestricted|jailbreak)\s+mode\b",
    ),
    (
        "role.system_says",
        ROLE,
        0.5,
        r"(?:^|\n|\s)(?:system|admin|administrator|developer|root)\s*(?:override|message|notice|instruction)?\s*:\s*(?:you|ignore|the assistant|new|override|disregard)",
    ),
    # --- system-prompt extraction
    (
        "extract.reveal_prompt",
        EXTRACTION,
        0.75,
        r"\b(?:reveal|show|print|display|output|repeat|recite|tell me|give me|share|dump|leak|expose|write out|list|spell out|what (?:is|are|was|were))\b[^.\n?]{0,25}?\b(?:your|the|its)\b[^.\n?]{0,25}?\b(?:system|initial|original|hidden|secret|internal|developer|pre-?)\s*(?:prompts?|instructions?|messages?|rules|directives?|configuration|guidelines)\b",
    ),
    (
        "extract.verbatim_above",
        EXTRACTION,
        0.65,
        r"\b(?:repeat|print|output|copy|echo|return)\b[^.\n]{0,40}\b(?:everything|all(?: the)? text|the text|the words|what(?:ever)? (?:is|was) written)\b[^.\n]{0,30}\b(?:above|before|preceding|prior|so far|verbatim)\b",
    ),
    (
        "extract.starting_with",
        EXTRACTION,
        0.6,
        r"\b(?:starting|beginning) with\s+[\"'“]?(?:you are|your instructions|system)\b",
    ),
    (
        "extract.what_were_you_told",
        EXTRACTION,
        0.55,
        r"\bwhat (?:were you|have you been|are you) (?:told|instructed|programmed|configured)\b(?! to (?:do )?(?:with|about) my)",
    ),
    # --- tool or credential exfiltration
    (
        "exfil.credentials",
        EXFILTRATION,
        0.7,
        r"\b(?:reveal|show|print|send|give|tell|output|list|leak|dump|share|exfiltrate|read out|include|embed)\b[^.\n]{0,40}\b(?:api[ _-]?keys?|secret keys?|access tokens?|bearer tokens?|passwords?|credentials|private keys?|env(?:ironment)? variables|\.env\b|ssh keys?|session cookies?)\b",
    ),
    (
        "exfil.send_to_url",
        EXFILTRATION,
        0.6,
        r"\b(?:send|post|upload|forward|transmit|exfiltrate|leak|submit|email)\b[^.\n]{0,60}\b(?:to|into|at)\b\s+(?:https?://|www\.|[\w.-]+@[\w-]+\.\w+|(?:my|this|the following) (?:server|endpoint|webhook|url|address))",
    ),
    (
        "exfil.sensitive_files",
        EXFILTRATION,
        0.6,
        r"(?:~/|/)\.ssh\b|\bid_(?:rsa|ed25519)\b|/etc/(?:passwd|shadow)\b|\.aws/credentials|\.git-credentials|\bcontents of (?:the |your )?\.env\b",
    ),
    (
        "exfil.markdown_image",
        EXFILTRATION,
        0.7,
        r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[^)]*=(?:\{|\$|<|%7b)",
    ),
    (
        "exfil.tool_abuse",
        EXFILTRATION,
        0.55,
        r"\b(?:call|invoke|use|run|execute)\b[^.\n]{0,30}\b(?:tool|function|plugin|command|shell|terminal)\b[^.\n]{0,60}\b(?:rm -rf|curl |wget |delete all|drop table|transfer (?:all )?(?:the )?funds|all (?:user|customer) (?:data|records))",
    ),
    (
        "exfil.conversation_history",
        EXFILTRATION,
        0.5,
        r"\b(?:send|forward|include|append|encode)\b[^.\n]{0,40}\b(?:conversation|chat history|previous messages|user data|all data)\b[^.\n]{0,40}\b(?:url|link|server|endpoint|image|webhook)\b",
    ),
    # --- delimiter injection
    (
        "delim.chat_markup",
        DELIMITER,
        0.8,
        r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\|?>|\[/?inst\]|<</?sys>>|<\|(?:user|assistant)\|>",
    ),
    (
        "delim.fake_turn",
        DELIMITER,
        0.5,
        r"(?:^|\n)\s*#{0,3}\s*(?:system|assistant|developer)\s*(?:prompt|message)?\s*:\s*\S[^\n]*\n[\s\S]{0,200}?(?:user|human)\s*:",
    ),
    (
        "delim.end_of_prompt",
        DELIMITER,
        0.55,
        r"(?:[-=#*_]{3,}|\"\"\"|```|\]\]|}}|</\w+>)\s*(?:end of (?:the )?(?:system )?(?:prompt|instructions|context|document|input)|new (?:system )?instructions|begin (?:new )?(?:system )?instructions)",
    ),
    ("delim.tag_system", DELIMITER, 0.45, r"</?(?:system|instructions|admin)>"),
    ("delim.tag_system_prompt", DELIMITER, 0.6, r"</?(?:sys_prompt|system_prompt)>"),
    # --- non-English instruction overrides
    (
        "i18n.de",
        OVERRIDE,
        0.8,
        r"\b(?:ignorier(?:e|en)?|vergiss|vergessen sie|missachte)\b[^.\n]{0,40}\b(?:vorherigen|bisherigen|obigen|alle|deine|ihre)\b[^.\n]{0,30}\b(?:anweisungen|instruktionen|regeln|befehle|vorgaben)\b",
    ),
    (
        "i18n.fr",
        OVERRIDE,
        0.8,
        r"\b(?:ignore[rz]?|oublie[rz]?|ne tiens pas compte)\b[^.\n]{0,40}\b(?:instructions|consignes|règles|directives)\b[^.\n]{0,30}\b(?:précédentes|antérieures|ci-dessus|initiales|système)?",
    ),
    (
        "i18n.es",
        OVERRIDE,
        0.8,
        r"\b(?:ignora|ignore|olvida|olvide|omite|descarta)\b[^.\n]{0,40}\b(?:instrucciones|reglas|indicaciones|órdenes)\b",
    ),
    (
        "i18n.it",
        OVERRIDE,
        0.8,
        r"\b(?:ignora|dimentica|trascura)\b[^.\n]{0,40}\b(?:istruzioni|regole|indicazioni)\b",
    ),
    (
        "i18n.pt",
        OVERRIDE,
        0.8,
        r"\b(?:ignore|ignora|esqueça|esqueca|desconsidere)\b[^.\n]{0,40}\b(?:instruções|instrucoes|regras|orientações)\b",
    ),
    (
        "i18n.nl",
        OVERRIDE,
        0.8,
        r"\b(?:negeer|vergeet)\b[^.\n]{0,40}\b(?:instructies|regels|opdrachten)\b",
    ),
    ("i18n.zh", OVERRIDE, 0.8, r"(?:忽略|无视|忘记|忽视)[^。\n]{0,12}(?:指令|指示|说明|规则|提示)"),
    ("i18n.ja", OVERRIDE, 0.8, r"(?:指示|命令|ルール|プロンプト)[^。\n]{0,12}(?:無視|忘れ)"),
    (
        "i18n.ru",
        OVERRIDE,
        0.8,
        r"(?:игнорируй|проигнорируй|забудь|не обращай внимания)[^.\n]{0,40}(?:инструкци|правила|указани|команд)",
    ),
    (
        "i18n.extract",
        EXTRACTION,
        0.7,
        r"(?:zeige?|gib|verrate)[^.\n]{0,30}(?:systemprompt|system-prompt|systemanweisung)|(?:montre|révèle|affiche)[^.\n]{0,30}(?:prompt système|instructions système)|(?:muestra|revela)[^.\n]{0,30}(?:prompt del sistema|instrucciones del sistema)|(?:显示|透露|输出)[^。\n]{0,10}(?:系统提示|系统指令)",
    ),
]

# Trigger words (space-separated), then substrings; kept beside the patterns they gate.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "override.ignore_previous": (
        "ignore ignoring ignored disregard disregarding forget forgetting skip override overriding bypass bypassing drop discard abandon neglect",
    ),
    "override.new_instructions": ("instructions instruction directives directive prompt rules",),
    "override.from_now_on": (
        "",
        "from now on",
        "starting now",
        "henceforth",
        "rest of this conversation",
    ),
    "override.do_not_follow": (
        "follow following obey obeying comply complying adhere adhering listen listening",
    ),
    "override.instead": ("instead rather",),
    "override.no_restrictions": (
        "restrictions filters limitations censorship guardrails safety policy policies ethical",
    ),
    "override.priority": ("priority precedence",),
    "role.you_are_now": ("", "you are now"),
    "role.no_longer": ("", "you are no longer"),
    "role.jailbreak_persona": (
        "dan stan dude aim unfiltered uncensored unrestricted evil jailbroken",
    ),
    "role.jailbreak_terms": (
        "anything developer god jailbreak jailbroken unfiltered evil dude aim",
    ),
    "role.pretend_unrestricted": ("pretend act behave roleplay role-play imagine",),
    "role.enable_mode": ("mode",),
    "role.system_says": (
        "",
        "system:",
        "admin:",
        "administrator:",
        "developer:",
        "root:",
        "system override",
        "system message",
        "system notice",
        "system instruction",
        "admin override",
        "admin message",
        "developer override",
        "developer message",
        "root override",
    ),
    "extract.reveal_prompt": (
        "system initial original hidden secret internal developer pre-prompt preprompt pre-instructions",
    ),
    "extract.verbatim_above": ("above before preceding prior far verbatim",),
    "extract.starting_with": ("starting beginning",),
    "extract.what_were_you_told": ("told instructed programmed configured",),
    "exfil.credentials": (
        "api key keys token tokens password passwords credentials private env environment ssh cookies cookie apikey api-key api_key .env",
    ),
    "exfil.send_to_url": ("server endpoint webhook url address", "http", "www.", "@"),
    "exfil.sensitive_files": (
        "",
        ".ssh",
        "id_rsa",
        "id_ed25519",
        "/etc/",
        ".aws/",
        ".git-credentials",
        ".env",
    ),
    "exfil.markdown_image": ("", "](http"),
    "exfil.tool_abuse": ("rm curl wget delete drop transfer user customer",),
    "exfil.conversation_history": ("conversation history previous data",),
    "delim.chat_markup": ("", "<|", "|>", "[inst]", "[/inst]", "<<sys>>", "<</sys>>"),
    "delim.fake_turn": (
        "",
        "system:",
        "assistant:",
        "developer:",
        "system prompt:",
        "system message:",
        "assistant message:",
        "developer message:",
        "system :",
        "assistant :",
    ),
    "delim.end_of_prompt": ("", "---", "===", "###", "***", "___", '"""', "```", "]]", "}}", "</"),
    "delim.tag_system": (
        "",
        "<system>",
        "</system>",
        "<instructions>",
        "</instructions>",
        "<admin>",
        "</admin>",
    ),
    "delim.tag_system_prompt": ("", "sys_prompt>", "system_prompt>"),
    "i18n.de": ("ignoriere ignorieren ignorier vergiss vergessen missachte",),
    "i18n.fr": ("ignore ignorer ignorez oublie oublier oubliez tiens",),
    "i18n.es": ("ignora ignore olvida olvide omite descarta",),
    "i18n.it": ("ignora dimentica trascura",),
    "i18n.pt": ("ignore ignora esqueça esqueca desconsidere",),
    "i18n.nl": ("negeer vergeet",),
    "i18n.zh": ("", "忽略", "无视", "忘记", "忽视"),
    "i18n.ja": ("", "無視", "忘れ"),
    "i18n.ru": ("игнорируй проигнорируй забудь обращай",),
    "i18n.extract": (
        "zeige zeig gib verrate montre révèle affiche muestra revela",
        "显示",
        "透露",
        "输出",
    ),
}


def _rule(id: str, category: str, weight: float, pattern: str) -> Rule:
    words, *substrings = _TRIGGERS[id]
    return Rule(
        id,
        category,
        weight,
        re.compile(pattern, re.IGNORECASE),
        frozenset(words.split()),
        tuple(substrings),
    )


RULES: tuple[Rule, ...] = tuple(_rule(*rule) for rule in _RULES)
