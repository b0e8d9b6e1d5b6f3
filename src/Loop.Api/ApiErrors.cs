namespace Loop.Api;

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Loop.Domain;
using Loop.Runtime;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Turns failures into RFC 9457 problem details that say what to fix. Never a stack trace.</summary>
public static class ApiErrors
{
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        where T : class
    {
        if (request.ContentLength == 0)
        {
            throw new LoopValidationException("body", "the request needs a JSON body");
        }
        // Only JSON: a browser sends a form or text/plain cross-site without asking first, JSON it does not.
        if (!request.HasJsonContentType())
        {
            var found = string.IsNullOrEmpty(request.ContentType) ? "none" : request.ContentType;
            throw new BadHttpRequestException(
                $"the request body must be JSON sent with Content-Type: application/json (found {found})", StatusCodes.Status415UnsupportedMediaType);
        }
        try
        {
            return await JsonSerializer.DeserializeAsync(request.Body, typeInfo, cancellationToken)
                ?? throw new LoopValidationException("body", "the request body must be a JSON object, not null");
        }
        catch (JsonException error)
        {
            var where = error.LineNumber is { } line ? $" at line {line + 1}, column {error.BytePositionInLine + 1}" : "";
            var field = error.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : "body";
            if (error.InnerException is InvalidOperationException { Message: var text } && text.Contains("UTF-16", StringComparison.Ordinal))
            {
                // An escape like \ud83e without its other half: JSON allows it, Unicode text cannot hold it.
                throw new LoopValidationException(field,
                    $"{field} holds half of a surrogate pair (a \\uD800-\\uDFFF escape without its other half){where}, which is not valid Unicode; send the whole character");
            }
            // The serializer's own words name .NET types ("could not be converted to System.String"):
            // the field's expected kind of value is said instead.
            if (error.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal))
            {
                throw field == "body"
                    ? new LoopValidationException("body", "the request body must be a JSON object, like {\"name\": \"value\"}")
                    : new LoopValidationException(field, $"{field} must be {KindOf(typeInfo, field)}{where}");
            }
            var reason = error.Message.Contains("isFinalBlock", StringComparison.Ordinal) || error.Message.Contains("end of data", StringComparison.Ordinal)
                    || error.Message.StartsWith("Expected depth to be zero", StringComparison.Ordinal)
                ? "it ends before its objects, arrays and strings are closed"
                : FirstSentence(error.Message);
            throw new LoopValidationException(field, $"the request body is not valid JSON{where}: {reason}");
        }
    }

    /// <summary>What a field of a request takes, in a person's words.</summary>
    private static string KindOf(JsonTypeInfo typeInfo, string field)
    {
        var type = typeInfo.Properties.FirstOrDefault(p => p.Name == field)?.PropertyType;
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            null => "a value of another type",
            _ when type == typeof(string) => "text in double quotes",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) => $"a whole number no larger than {int.MaxValue}",
            _ when type == typeof(long) => $"a whole number no larger than {long.MaxValue}",
            _ when type == typeof(double) || type == typeof(decimal) => "a number",
            _ when type != typeof(string) && type.IsAssignableTo(typeof(System.Collections.IEnumerable)) => "a list, like [\"a\", \"b\"]",
            _ => "an object",
        };
    }

    /// <summary>A whole-number query parameter; null when absent. Parsed here rather than bound as
    /// int?, so a bad value gets a message naming the field.</summary>
    public static int? Whole(string field, string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var value = WholeLong(field, text)!.Value;
        return value is >= int.MinValue and <= int.MaxValue
            ? (int)value
            : throw new LoopValidationException(field, $"{field} is too large: at most {int.MaxValue} (found {text})");
    }

    /// <summary>A whole-number query parameter that may be large (an id); null when absent.</summary>
    public static long? WholeLong(string field, string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        throw new LoopValidationException(field, text.Trim().TrimStart('-').All(char.IsAsciiDigit)
            ? $"{field} is too large: at most {long.MaxValue} (found {text})"
            : $"{field} must be a whole number (found \"{text}\")");
    }

    /// <summary>Middleware: answers any failure of the rest of the pipeline with problem details.
    /// Expected failures (bad input, unknown ids) are not logged as errors.</summary>
    public static async Task CatchAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception error) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            await WriteAsync(context, error);
        }
    }

    private static async Task WriteAsync(HttpContext context, Exception error)
    {
        var problem = error switch
        {
            LoopValidationException invalid => Validation(invalid),
            LoopNotFoundException notFound => new ProblemDetails { Status = 404, Title = "Not found", Detail = notFound.Message },
            LoopConflictException conflict => new ProblemDetails { Status = 409, Title = "Conflict", Detail = conflict.Message },
            LoopForbiddenException forbidden => new ProblemDetails { Status = 403, Title = "Forbidden", Detail = forbidden.Message },
            LoopUnauthorizedException unauthorized => new ProblemDetails { Status = 401, Title = "Unauthorized", Detail = unauthorized.Message },
            LoopTooManyRequestsException tooMany => TooManyRequests(context, tooMany),
            StoreUnavailableException away => Unavailable(context, away),
            BadHttpRequestException bad => new ProblemDetails { Status = bad.StatusCode, Title = ReasonPhrases.GetReasonPhrase(bad.StatusCode), Detail = bad.Message },
            _ => null,
        };
        if (problem is null)
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Loop.Api");
            logger.LogError(error, "Request {Method} {Path} failed", context.Request.Method, context.Request.Path);
            problem = new ProblemDetails
            {
                Status = 500,
                Title = "Internal error",
                Detail = $"Loop failed to handle this request; the daemon's log has the details (trace id {context.TraceIdentifier}).",
            };
        }
        problem.Instance = context.Request.Path;
        problem.Extensions["trace_id"] = context.TraceIdentifier;
        context.Response.StatusCode = problem.Status ?? 500;
        context.Response.ContentType = "application/problem+json";
        if (problem is HttpValidationProblemDetails validation)
        {
            await JsonSerializer.SerializeAsync(context.Response.Body, validation, ApiJsonContext.Default.HttpValidationProblemDetails);
        }
        else
        {
            await JsonSerializer.SerializeAsync(context.Response.Body, problem, ApiJsonContext.Default.ProblemDetails);
        }
    }

    /// <summary>The database is away (a cluster's PostgreSQL restarting, say): nothing was accepted, and
    /// the same request will do once it is back.</summary>
    private static ProblemDetails Unavailable(HttpContext context, StoreUnavailableException away)
    {
        context.Response.Headers.RetryAfter = "2";
        return new ProblemDetails
        {
            Status = 503,
            Title = "Service unavailable",
            Detail = $"the store is unavailable ({away.Message}); nothing was stored: send the request again in a moment",
        };
    }

    private static ProblemDetails TooManyRequests(HttpContext context, LoopTooManyRequestsException tooMany)
    {
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(tooMany.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return new ProblemDetails { Status = 429, Title = "Too many requests", Detail = tooMany.Message };
    }

    private static HttpValidationProblemDetails Validation(LoopValidationException invalid) =>
        new(new Dictionary<string, string[]> { [invalid.Field] = [invalid.Message] })
        {
            Status = 400,
            Title = "Invalid request",
            Detail = invalid.Message,
        };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
