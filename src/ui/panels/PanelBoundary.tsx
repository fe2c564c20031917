import { Component, type ReactNode } from 'react';

interface Props {
  /** Panel name, shown in the message so the user knows what failed. */
  name: string;
  children: ReactNode;
}

/** One per panel: a failing panel shows its error and a retry button; the rest of the app stays. */
export class PanelBoundary extends Component<Props, { error: Error | null }> {
  override state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div className="panel-error" role="alert">
        <strong>{this.props.name} failed:</strong> {error.message}
        <button type="button" onClick={() => this.setState({ error: null })}>
          Retry
        </button>
      </div>
    );
  }
}
