import { describe, expect, it } from 'vitest';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { visualFailure } from '../../src/providers/volcengine/errors.js';

const business = (status: number, code: number, message: string, headers = new Headers()) =>
  visualFailure(status, headers, { code, message, request_id: 'REQ1', data: null }, 'jimeng');
const gateway = (status: number, code: string, message = 'x') =>
  visualFailure(
    status,
    new Headers(),
    { ResponseMetadata: { RequestId: 'REQ2', Error: { Code: code, Message: message } } },
    'jimeng',
  );

describe('visual API failures', () => {
  it('a 200 with code 10000 is no failure', () => {
    expect(business(200, 10000, 'Success')).toBeUndefined();
  });

  it('maps the business codes of the Jimeng API reference by meaning', () => {
    for (const code of [50411, 50412, 50413, 50512]) {
      const error = business(400, code, 'Risk Not Pass');
      expect(error).toBeInstanceOf(PermanentError);
      expect(error).toMatchObject({ code: 'CONTENT_POLICY' });
      expect(error!.message).toContain('(request REQ1)');
    }
    expect(business(400, 50511, 'Post Img Risk Not Pass')).toMatchObject({ code: 'PROVIDER_OUTPUT_REFUSED' });
    expect(business(400, 50519, 'copyright')).toBeInstanceOf(RetryableError);
    const qps = business(429, 50429, 'Request Has Reached API Limit', new Headers({ 'retry-after': '3' }));
    expect(qps).toBeInstanceOf(RateLimitedError);
    expect((qps as RateLimitedError).retryAfterMs).toBe(3000);
    expect(business(429, 50430, 'Concurrent Limit')).toBeInstanceOf(RateLimitedError);
    expect(business(500, 50500, 'Internal Error')).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(business(500, 50501, 'Internal RPC Error')).toBeInstanceOf(RetryableError);
    expect(business(400, 50400, 'Invalid parameter')).toMatchObject({ code: 'PROVIDER_REJECTED' });
    // An unknown failing code inside a 200: the service's own 505xx is retried, others refused.
    expect(business(200, 50599, 'odd')).toBeInstanceOf(RetryableError);
    expect(business(200, 50207, 'odd')).toBeInstanceOf(PermanentError);
  });

  it('maps the gateway envelope: key problems, flow limits, money, clock skew', () => {
    for (const code of [
      'SignatureDoesNotMatch',
      'InvalidAccessKey',
      'AccessDenied',
      'LackPolicy',
      'MissingAuthenticationToken',
    ]) {
      expect(gateway(401, code)).toBeInstanceOf(CredentialError);
    }
    expect(gateway(429, 'FlowLimitExceeded')).toBeInstanceOf(RateLimitedError);
    expect(gateway(403, 'AccountArrears')).toBeInstanceOf(QuotaExceededError);
    expect(gateway(400, 'InvalidTimestamp')).toBeInstanceOf(RetryableError);
    expect(gateway(404, 'InvalidActionOrVersion')).toBeInstanceOf(PermanentError);
    expect(gateway(502, 'BadGateway')).toBeInstanceOf(RetryableError);
    expect(gateway(401, 'SignatureDoesNotMatch', 'does not match')!.message).toBe(
      'jimeng: HTTP 401 SignatureDoesNotMatch: does not match (request REQ2)',
    );
  });
});
