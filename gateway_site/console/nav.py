"""The console's navigation: pages register an entry; who sees it comes from the page's own roles.

An entry names a URL (with a `tenant_slug` argument); the roles that may see it are read from the
view's `console_view(...)` declaration, so the menu and the access check cannot disagree.
Other apps register their pages in their AppConfig.ready():

    from gateway_site.console.nav import NavEntry, nav_register
    nav_register(NavEntry(section="Compliance", label="Audit search", url_name="compliance:search"))
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import resolve, reverse

from gateway_site.console.access import ConsoleContext, access_of

SECTIONS = ("Overview", "Developer", "Compliance", "Finance", "Administration")


@dataclass(frozen=True, slots=True)
class NavEntry:
    section: str
    label: str
    url_name: str
    order: int = 100


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class NavSection:
    title: str
    links: tuple[NavLink, ...]


_entries: dict[str, NavEntry] = {}


def nav_register(entry: NavEntry) -> None:
    if entry.section not in SECTIONS:
        raise ValueError(f"unknown console nav section {entry.section!r}; one of {SECTIONS}")
    _entries[entry.url_name] = entry


def nav_for(context: ConsoleContext, current_path: str) -> list[NavSection]:
    slug = context.tenant.slug
    sections: dict[str, list[NavLink]] = {}
    for entry in sorted(_entries.values(), key=lambda e: (e.order, e.label)):
        url = reverse(entry.url_name, kwargs={"tenant_slug": slug})
        access = access_of(resolve(url).func)
        if access is None or not (access.roles & context.effective_roles):
            continue
        sections.setdefault(entry.section, []).append(
            NavLink(entry.label, url, current=current_path == url)
        )
    return [NavSection(title, tuple(sections[title])) for title in SECTIONS if title in sections]


def register_console_pages() -> None:
    for entry in (
        NavEntry("Overview", "Overview", "console:tenant_home", 0),
        NavEntry("Developer", "My keys", "console:keys", 10),
        NavEntry("Developer", "Quickstart", "console:quickstart", 20),
        NavEntry("Developer", "Playground", "console:playground", 30),
        NavEntry("Developer", "My requests", "console:my_requests", 40),
        NavEntry("Administration", "Teams", "console:admin_teams", 10),
        NavEntry("Administration", "Members", "console:admin_members", 20),
        NavEntry("Administration", "All keys", "console:admin_keys", 30),
        NavEntry("Administration", "Models", "console:admin_models", 40),
        NavEntry("Administration", "Activity log", "console:admin_activity", 50),
    ):
        nav_register(entry)
