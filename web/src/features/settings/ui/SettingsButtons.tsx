// The buttons that open the settings dialogs. Each dialog is a chunk of its own, loaded when
// first opened (or when the pointer reaches its button), and stays mounted afterwards so that
// closing it can hand focus back to the button.
import { lazy, Suspense, useState } from "react";
import type { Chat } from "@/shared/api/types";
import { useAccountSettingsRequest } from "../model/opener";
import { GearIcon } from "./GearIcon";

const loadAccount = () => import("./AccountSettingsDialog");
const loadChat = () => import("./ChatSettingsDialog");
const AccountSettingsDialog = lazy(() => loadAccount().then((m) => ({ default: m.AccountSettingsDialog })));
const ChatSettingsDialog = lazy(() => loadChat().then((m) => ({ default: m.ChatSettingsDialog })));

function useOpened() {
  const [open, setOpen] = useState(false);
  const [mounted, setMounted] = useState(false);
  return {
    open,
    mounted,
    show: () => {
      setMounted(true);
      setOpen(true);
    },
    hide: () => setOpen(false),
  };
}

/** The gear named "Settings" in the account bar (an icon: the bar is narrow): the user's instructions and allowed hosts. */
export function AccountSettingsButton() {
  const dialog = useOpened();
  // Other parts of the app (an egress refusal's link) open it too.
  useAccountSettingsRequest(dialog.show);
  return (
    <>
      <button type="button" className="icon-btn" aria-label="Settings" title="Settings: your instructions and allowed hosts" aria-haspopup="dialog" onClick={dialog.show} onPointerEnter={() => void loadAccount()}>
        <GearIcon />
      </button>
      {dialog.mounted && (
        <Suspense fallback={null}>
          <AccountSettingsDialog open={dialog.open} onClose={dialog.hide} />
        </Suspense>
      )}
    </>
  );
}

/** The gear in a chat's header: the chat's instructions, thinking budget and rules. */
export function ChatSettingsButton({ chat }: { chat: Chat }) {
  const dialog = useOpened();
  return (
    <>
      <button type="button" className="icon-btn" aria-label="Chat settings" title="Chat settings" aria-haspopup="dialog" onClick={dialog.show} onPointerEnter={() => void loadChat()}>
        <GearIcon />
      </button>
      {dialog.mounted && (
        <Suspense fallback={null}>
          <ChatSettingsDialog chat={chat} open={dialog.open} onClose={dialog.hide} />
        </Suspense>
      )}
    </>
  );
}
