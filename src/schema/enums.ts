import { LeaseStatus, ResourceStatus } from '../generated/prisma/enums.js';
import { builder } from './builder.js';

export const LeaseStatusEnum = builder.enumType(LeaseStatus, {
  name: 'LeaseStatus',
  description:
    'PENDING → ACQUIRED → ACTIVE → RELEASED → DESTROYED; BROKEN → DESTROYED from pending, acquired or active.',
});

export const ResourceStatusEnum = builder.enumType(ResourceStatus, {
  name: 'ResourceStatus',
  description: 'PENDING → ACTIVE → RELEASED → DESTROYED; BROKEN → DESTROYED.',
});
