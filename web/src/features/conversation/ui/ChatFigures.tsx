// One line under the conversation: what this chat cost, what today cost across the user's
// chats, and how full the model's context is after the latest turn.
import { formatCost } from "@/shared/lib/format";
import { useChatCosts } from "../api/costs";
import { contextFill } from "../model/figures";
import type { MessageView } from "../model/conversation";

export function ChatFigures({ chatId, messages }: { chatId: string; messages: MessageView[] }) {
  const costs = useChatCosts(chatId);
  const fill = contextFill(messages.filter((m) => m.role === "assistant").map((m) => m.usage));
  if (!costs.data && !fill) return null;
  return (
    <div className="chat-figures" aria-label="Costs and context">
      {costs.data && (
        <>
          <span title="Every turn of this chat">This chat {formatCost(costs.data.chat_total_usd)}</span>
          <span title="Every turn of yours since midnight">Today {formatCost(costs.data.user_total_usd)}</span>
        </>
      )}
      {fill && (
        <span className="context-meter" title="Tokens in the model's context after the latest turn, of its context window">
          Context
          <meter min={0} max={1} low={0.6} high={0.85} optimum={0} value={fill.share} aria-label="Context used" />
          {fill.label}
        </span>
      )}
    </div>
  );
}
