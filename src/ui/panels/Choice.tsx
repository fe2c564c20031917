// A labelled drop-down: the label, then the select of its choices (after an "unset" choice where a
// setting may be left to its default), each showing its label and an optional tooltip. The chosen
// value comes back as the choice's own value, typed, not as the option's string.

import type { ReactNode } from 'react';

export interface ChoiceOption<V extends string | number> {
  value: V;
  /** What the option shows; the value itself when absent. */
  label?: ReactNode;
  title?: string;
  disabled?: boolean;
}

export interface ChoiceProps<V extends string | number> {
  id: string;
  label: string;
  /** The chosen value; null or undefined while the setting is unset. */
  value: V | null | undefined;
  options: readonly (V | ChoiceOption<V>)[];
  onChange(value: V): void;
  /** A first option that leaves the setting to its default: what it shows, and what choosing it does. */
  unset?: { label: ReactNode; choose(): void };
  disabled?: boolean;
  title?: string;
}

export function Choice<V extends string | number>(props: ChoiceProps<V>) {
  const { id, label, value, onChange, unset, disabled, title } = props;
  const options = props.options.map((o): ChoiceOption<V> => (typeof o === 'object' ? o : { value: o }));
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value ?? ''}
        onChange={(e) => {
          const chosen = options.find((o) => String(o.value) === e.target.value);
          if (chosen) onChange(chosen.value);
          else unset?.choose();
        }}
        disabled={disabled}
        title={title}
      >
        {unset && <option value="">{unset.label}</option>}
        {options.map((o) => (
          <option key={o.value} value={o.value} title={o.title} disabled={o.disabled}>
            {o.label ?? o.value}
          </option>
        ))}
      </select>
    </>
  );
}
