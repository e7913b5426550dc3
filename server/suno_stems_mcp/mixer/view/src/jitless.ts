// Imported first: zod must never probe `new Function` under a CSP without 'unsafe-eval'.
import { z } from "zod/v4";

z.config({ jitless: true });
