// Under a running turn: what the agent is doing now and for how long the turn has run.
import { useEffect, useState } from "react";
import { Spinner } from "@/shared/ui/Spinner";
import type { MessageView } from "../model/conversation";
import { activity, formatElapsed } from "../model/live";

/** The current time, renewed every `ms` while mounted. */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

export function TurnProgress({ message }: { message: MessageView }) {
  const now = useNow(1000);
  const started = message.startedAt ? Date.parse(message.startedAt) : NaN;
  return (
    <div className="message-footer turn-progress">
      <Spinner /> <span className="turn-activity">{activity(message)}</span>
      {Number.isFinite(started) && (
        <span className="muted small turn-elapsed" title="Time since the turn started">
          {formatElapsed(now - started)}
        </span>
      )}
    </div>
  );
}
