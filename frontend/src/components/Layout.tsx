import { Suspense } from "react";
import { Navigate, NavLink, Outlet, useLocation } from "react-router";

import { useSignedIn } from "../auth/session";
import { NotificationCenter } from "../notifications/NotificationCenter";

export function Layout() {
  const signedIn = useSignedIn();
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/market" className="brand" aria-label="Sage, market overview">
          Sage
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/market">Market</NavLink>
          <NavLink to="/chat">Chat</NavLink>
          {signedIn && <NavLink to="/portfolio">Portfolio</NavLink>}
          {signedIn && <NavLink to="/alerts">Alerts</NavLink>}
          {signedIn ? <NavLink to="/account">Account</NavLink> : <NavLink to="/login">Sign in</NavLink>}
        </nav>
        <NotificationCenter />
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p className="muted" role="status">Loading…</p>}>
          <Outlet />
        </Suspense>
      </main>
    </>
  );
}

export function RequireSignIn() {
  const signedIn = useSignedIn();
  const location = useLocation();
  if (!signedIn) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <Outlet />;
}
