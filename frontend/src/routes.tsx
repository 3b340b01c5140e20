import { lazy } from "react";
import { createBrowserRouter, Navigate } from "react-router";

import { Layout, RequireSignIn } from "./components/Layout";
import { LoginPage } from "./pages/LoginPage";
import { MarketPage } from "./pages/MarketPage";
import { NotFoundPage } from "./pages/NotFoundPage";

// The first page (market or sign-in) is in the entry chunk; the others load when first
// opened: the symbol page carries the chart library, the chat the markdown renderer.
const SymbolPage = lazy(() => import("./pages/SymbolPage"));
const ChatPage = lazy(() => import("./pages/ChatPage").then((m) => ({ default: m.ChatPage })));
const AlertsPage = lazy(() => import("./pages/AlertsPage").then((m) => ({ default: m.AlertsPage })));
const PortfolioPage = lazy(() => import("./pages/PortfolioPage").then((m) => ({ default: m.PortfolioPage })));
const NotificationsPage = lazy(() => import("./pages/NotificationsPage").then((m) => ({ default: m.NotificationsPage })));
const AccountPage = lazy(() => import("./pages/AccountPage").then((m) => ({ default: m.AccountPage })));

export const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { index: true, element: <Navigate to="/market" replace /> },
      { path: "market", element: <MarketPage /> },
      { path: "market/:symbol", element: <SymbolPage /> },
      { path: "login", element: <LoginPage /> },
      {
        element: <RequireSignIn />,
        children: [
          { path: "chat", element: <ChatPage /> },
          { path: "chat/:chatId", element: <ChatPage /> },
          { path: "portfolio", element: <PortfolioPage /> },
          { path: "alerts", element: <AlertsPage /> },
          { path: "notifications", element: <NotificationsPage /> },
          { path: "account", element: <AccountPage /> },
        ],
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
