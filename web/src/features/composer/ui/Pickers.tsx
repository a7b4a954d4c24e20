// The model and mode pickers of a composer (a chat's, or the home screen's for the chat it
// will create): models by name with their description, modes with what they allow.
import type { PermissionMode } from "@/shared/api/types";
import { modelChoices, modelDescription, modelName, MODES } from "../model/options";

export function ModelPicker({ value, onChange }: { value: string; onChange: (model: string) => void }) {
  return (
    <label className="picker">
      <span className="sr-only">Model</span>
      <select aria-label="Model" value={value} title={modelDescription(value)} onChange={(e) => onChange(e.target.value)}>
        {modelChoices(value).map((model) => (
          <option key={model} value={model} title={modelDescription(model)}>
            {modelName(model)}
          </option>
        ))}
      </select>
    </label>
  );
}

export function ModePicker({ value, onChange }: { value: PermissionMode; onChange: (mode: PermissionMode) => void }) {
  return (
    <label className="picker">
      <span className="sr-only">Mode</span>
      <select aria-label="Mode" value={value} title={MODES.find((m) => m.value === value)?.hint} onChange={(e) => onChange(e.target.value as PermissionMode)}>
        {MODES.map((mode) => (
          <option key={mode.value} value={mode.value} title={mode.hint}>
            {mode.label}
          </option>
        ))}
      </select>
    </label>
  );
}
