"""Sign-in (password or single sign-on), sign-out, and the tenant picker."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from mozilla_django_oidc import views as oidc_views

from gateway_site.console.access import console_public, console_signed_in
from tenants import selectors


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context


login = console_public(LoginView.as_view())
logout = console_public(auth_views.LogoutView.as_view(next_page="console:login"))
oidc_start = console_public(oidc_views.OIDCAuthenticationRequestView.as_view())
oidc_callback = console_public(oidc_views.OIDCAuthenticationCallbackView.as_view())


@console_signed_in
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the tenant when there is one; a picker otherwise."""
    if selectors.is_platform_admin(user=request.user):
        tenants = list(selectors.tenants_all())
    else:
        tenants = [m.tenant for m in selectors.memberships_of(user=request.user)]
    if len(tenants) == 1:
        return redirect("console:tenant_home", tenant_slug=tenants[0].slug)
    return render(request, "console/home.html", {"tenants": tenants})
