namespace Loop.Api;

using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;

/// <summary>
/// Requests per client IP on the API, per minute: api_rate_limit_per_minute in all (0 turns it off), and
/// <see cref="LoginPerMinute"/> for login and setup, against password guessing. Health and the unix
/// socket (agent containers, which have their own concurrency limits) are not limited.
/// </summary>
public static class ApiRateLimits
{
    public const int LoginPerMinute = 10;

    public static void Configure(RateLimiterOptions options, int perMinute)
    {
        options.GlobalLimiter = PartitionedRateLimiter.CreateChained(
            PartitionedRateLimiter.Create<HttpContext, string>(context =>
                perMinute <= 0 || ClientOf(context) is not { } ip || context.Request.Path.Equals("/api/health") || !context.Request.Path.StartsWithSegments("/api")
                    ? RateLimitPartition.GetNoLimiter("")
                    : RateLimitPartition.GetFixedWindowLimiter(ip, _ => PerMinuteWindow(perMinute))),
            PartitionedRateLimiter.Create<HttpContext, string>(context =>
                ClientOf(context) is { } ip && HttpMethods.IsPost(context.Request.Method)
                    && (context.Request.Path.Equals("/api/auth/login") || context.Request.Path.Equals("/api/auth/setup"))
                    ? RateLimitPartition.GetFixedWindowLimiter(ip, _ => PerMinuteWindow(LoginPerMinute))
                    : RateLimitPartition.GetNoLimiter("")));
        options.OnRejected = async (rejected, cancellationToken) =>
        {
            var context = rejected.HttpContext;
            var seconds = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
                ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))
                : 60;
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            context.Response.ContentType = "application/problem+json";
            var problem = new ProblemDetails
            {
                Status = 429,
                Title = "Too many requests",
                Detail = $"too many requests from this address; try again in {seconds} s",
                Instance = context.Request.Path,
            };
            await JsonSerializer.SerializeAsync(context.Response.Body, problem, ApiJsonContext.Default.ProblemDetails, cancellationToken);
        };
    }

    private static FixedWindowRateLimiterOptions PerMinuteWindow(int permits) => new()
    {
        PermitLimit = permits,
        Window = TimeSpan.FromMinutes(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };

    // Unix-socket connections have no address: they are not limited here.
    private static string? ClientOf(HttpContext context) =>
        context.Connection.RemoteIpAddress is IPAddress ip ? ip.ToString() : null;
}
