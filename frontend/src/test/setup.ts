import "@testing-library/jest-dom/vitest";

import { configure } from "@testing-library/react";

// findBy*/waitFor wait on a condition; 1 s (the default) is too short when the two cores
// are busy (a full page's role queries alone can take that long), so wait up to 5 s.
configure({ asyncUtilTimeout: 5000 });
