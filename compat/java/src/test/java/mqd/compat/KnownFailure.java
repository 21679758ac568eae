package mqd.compat;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.lang.reflect.Method;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.InvocationInterceptor;
import org.junit.jupiter.api.extension.ReflectiveInvocationContext;

/**
 * Marks a test of a feature mqd has not built yet. The test still runs; it
 * passes only if it FAILS, and its failure message must contain
 * {@link #expect()} so that it fails for the reason named, not another. If
 * the test passes, the feature works: the marker then fails the test and
 * says to remove it.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
@ExtendWith(KnownFailure.Interceptor.class)
public @interface KnownFailure {
    /** The issue and feature, e.g. "issue 10: delay levels". */
    String value();

    /** A substring the failure's message (or a cause's) must contain. */
    String expect();

    final class Interceptor implements InvocationInterceptor {
        @Override
        public void interceptTestMethod(Invocation<Void> invocation,
                ReflectiveInvocationContext<Method> ctx, ExtensionContext ext) throws Throwable {
            KnownFailure kf = ctx.getExecutable().getAnnotation(KnownFailure.class);
            Throwable failure = null;
            try {
                invocation.proceed();
            } catch (Throwable t) {
                failure = t;
            }
            String name = ctx.getExecutable().getName();
            if (failure == null) {
                throw new AssertionError("KNOWN FAILURE NOW PASSES: " + name + " passed; "
                        + "remove @KnownFailure(\"" + kf.value() + "\") from it");
            }
            if (!mentions(failure, kf.expect())) {
                throw new AssertionError("known failure (" + kf.value() + ") failed for another reason "
                        + "than \"" + kf.expect() + "\"", failure);
            }
            StringBuilder why = new StringBuilder();
            for (Throwable t = failure; t != null && why.length() < 2000; t = t.getCause()) {
                why.append("\n    ").append(t);
            }
            System.out.println("[known failure] " + name + " (" + kf.value() + "):" + why);
        }

        private static boolean mentions(Throwable t, String s) {
            for (int depth = 0; t != null && depth < 10; t = t.getCause(), depth++) {
                if (String.valueOf(t.getMessage()).contains(s)) {
                    return true;
                }
            }
            return false;
        }
    }
}
