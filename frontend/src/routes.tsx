import { lazy } from "react";
import { createBrowserRouter, Navigate } from "react-router";

import { Layout, RequireSignIn } from "./components/Layout";
import { AccountPage } from "./pages/AccountPage";
import { AlertsPage } from "./pages/AlertsPage";
import { ChatPage } from "./pages/ChatPage";
import { LoginPage } from "./pages/LoginPage";
import { MarketPage } from "./pages/MarketPage";
import { NotFoundPage } from "./pages/NotFoundPage";

// The symbol page carries the chart library: loaded when first opened.
const SymbolPage = lazy(() => import("./pages/SymbolPage"));

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
          { path: "alerts", element: <AlertsPage /> },
          { path: "account", element: <AccountPage /> },
        ],
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
