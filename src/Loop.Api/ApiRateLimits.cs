namespace Loop.Api;

using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Threading.RateLimiting;
using Loop.Runtime;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;

/// <summary>
/// Requests per minute on the API. In general api_rate_limit_per_minute (0 turns it off), counted
/// per credential for a caller with a valid one and per client address for the others, so a flood
/// of anonymous calls from an address never locks out a user working from it. Login and setup:
/// <see cref="LoginPerMinute"/> per client (the unix socket counting as one client), against
/// password guessing; <see cref="AuthService"/> also limits failed logins per account. Health and
/// the rest of the unix socket (agent containers, which have their own concurrency limits) are not limited.
/// Runs after <see cref="ApiCallers.IdentifyAsync"/>, which says who calls, and before
/// <see cref="ApiCallers.AdmitAsync"/>, so refused calls count too.
/// </summary>
public static class ApiRateLimits
{
    public const int LoginPerMinute = 10;

    public static void Configure(RateLimiterOptions options, int perMinute)
    {
        options.GlobalLimiter = PartitionedRateLimiter.CreateChained(
            PartitionedRateLimiter.Create<HttpContext, string>(context =>
                perMinute <= 0 || ApiCallers.OnContainerEndpoint(context) || context.Request.Path.Equals("/api/health") || !context.Request.Path.StartsWithSegments("/api")
                    ? RateLimitPartition.GetNoLimiter("")
                    : RateLimitPartition.GetFixedWindowLimiter(ApiCallers.RateKeyOf(context), _ => PerMinuteWindow(perMinute))),
            PartitionedRateLimiter.Create<HttpContext, string>(context =>
                HttpMethods.IsPost(context.Request.Method)
                    && (context.Request.Path.Equals("/api/auth/login") || context.Request.Path.Equals("/api/auth/setup"))
                    ? RateLimitPartition.GetFixedWindowLimiter(ClientOf(context), _ => PerMinuteWindow(LoginPerMinute))
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
                Detail = $"too many requests; try again in {seconds} s",
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

    // Unix-socket connections have no address: all of them are one client.
    private static string ClientOf(HttpContext context) =>
        context.Connection.RemoteIpAddress is IPAddress ip ? ip.ToString() : "unix socket";
}
