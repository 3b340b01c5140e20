import { Link } from "react-router";

export function NotFoundPage() {
  return (
    <section className="page narrow">
      <h1>Page not found</h1>
      <p>
        There is nothing here. Go to the <Link to="/market">market</Link>.
      </p>
    </section>
  );
}
