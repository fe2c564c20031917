export function App() {
  return (
    <main>
      <h1>fusionlab</h1>
      <p data-testid="status">ready</p>
    </main>
  );
}
